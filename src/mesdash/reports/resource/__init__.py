"""Equipment (resource) history: E10 state hours, OU %, availability and OEE per machine and
period, every view from the cached dataset of one primary query."""
