"""Hold history: holds and releases over a factory-day range, every view from the cached
dataset of one primary query."""
