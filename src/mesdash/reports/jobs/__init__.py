"""Equipment jobs: repair and maintenance jobs of 1–50 machines with their transactions,
every view and the export from the cached dataset of one primary query."""
