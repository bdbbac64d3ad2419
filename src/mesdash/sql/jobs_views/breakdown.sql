-- Jobs of the cached jobs dataset (view engine: DuckDB) counted per {{ dimension }} (from a
-- code allow-list: machine, status, model, cause), most jobs first, with average hours from
-- creation to completion. {{ filters }} holds the other selections.
-- example dimension: RESOURCENAME
-- example filters: 1 = 1
WITH jobs AS (
  SELECT JOBID, MIN({{ dimension }}) AS ITEM,
         (epoch(MIN(COMPLETEDATE)) - epoch(MIN(CREATEDATE))) / 3600.0 AS JOB_HOURS
  FROM dataset
  WHERE {{ filters }}
  GROUP BY JOBID
)
SELECT COALESCE(ITEM, '(none)') AS ITEM, COUNT(*) AS JOBS, AVG(JOB_HOURS) AS AVG_HOURS
FROM jobs
GROUP BY COALESCE(ITEM, '(none)')
ORDER BY JOBS DESC, ITEM
