-- Oracle: a DATE keeps its time, so the factory day of e.TS is TRUNC(ts - minutes / 1440).
TRUNC(e.TS - :shift_minutes / 1440)
