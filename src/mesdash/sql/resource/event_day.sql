-- The factory day (07:30 boundary: :shift_minutes) of an events row e at time e.TS.
CAST(e.TS - :shift_minutes * INTERVAL '1' MINUTE AS DATE)
