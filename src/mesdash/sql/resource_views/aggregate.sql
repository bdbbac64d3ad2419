-- E10 hours per state, output and rejected quantity of the cached equipment dataset (view
-- engine: DuckDB), grouped by {{ keys }} — from a code allow-list: the whole selection
-- (ALL_), the period (PERIOD = {{ bucket }} of the factory day FDAY), the machine, or
-- machine × period — and the E10 percentages, the one formula every view and export uses:
-- OU % = PRD / (PRD+SBY+UDT+SDT+EGT); Availability % = (PRD+SBY+EGT) / all six states;
-- Yield % = output / (output + NG), empty without output; OEE % = OU % × Yield %.
-- {{ filters }} holds machine and period selections.
-- example keys: PERIOD
-- example bucket: FDAY
-- example filters: 1 = 1
SELECT s.*,
       CASE WHEN s.LOADING_HOURS > 0 THEN 100.0 * s.PRD / s.LOADING_HOURS END AS OU_PCT,
       CASE WHEN s.TOTAL_HOURS > 0 THEN 100.0 * (s.PRD + s.SBY + s.EGT) / s.TOTAL_HOURS END AS AVAILABILITY_PCT,
       CASE WHEN s.OUTPUT_QTY > 0 THEN 100.0 * s.OUTPUT_QTY / (s.OUTPUT_QTY + s.NG_QTY) END AS YIELD_PCT,
       CASE WHEN s.OUTPUT_QTY > 0 AND s.LOADING_HOURS > 0
            THEN 100.0 * s.PRD / s.LOADING_HOURS * s.OUTPUT_QTY / (s.OUTPUT_QTY + s.NG_QTY) END AS OEE_PCT
FROM (
  SELECT h.*, h.PRD + h.SBY + h.UDT + h.SDT + h.EGT AS LOADING_HOURS,
         h.PRD + h.SBY + h.UDT + h.SDT + h.EGT + h.NST AS TOTAL_HOURS
  FROM (
    SELECT {{ keys }},
           SUM(PRD) AS PRD,
           SUM(SBY) AS SBY,
           SUM(UDT) AS UDT,
           SUM(SDT) AS SDT,
           SUM(EGT) AS EGT,
           SUM(NST) AS NST,
           SUM(OUTPUT_QTY) AS OUTPUT_QTY,
           SUM(NG_QTY) AS NG_QTY,
           COUNT(DISTINCT RESOURCEID) AS MACHINES
    FROM (
      SELECT d.*, CAST({{ bucket }} AS DATE) AS PERIOD, 'all' AS ALL_
      FROM dataset d
    ) x
    WHERE {{ filters }}
    GROUP BY {{ keys }}
  ) h
) s
