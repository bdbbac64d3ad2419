-- One page of jobs (one row per job) of the cached jobs dataset (view engine: DuckDB), with
-- the number of transactions, hours from creation to completion, and the total count.
-- {{ order }} comes from a sort allow-list and ends with JOBID; {{ filters }} holds the
-- machine, status and model selections.
-- example order: CREATEDATE DESC, JOBID
-- example filters: 1 = 1
SELECT * FROM (
  SELECT j.*, ROW_NUMBER() OVER (ORDER BY {{ order }}) AS RN__, COUNT(*) OVER () AS TOTAL__,
         SUM(j.EXPORT_ROWS) OVER () AS EXPORT_TOTAL__
  FROM (
    SELECT JOBID, MIN(RESOURCEID) AS RESOURCEID, MIN(RESOURCENAME) AS RESOURCENAME,
           MIN(JOBSTATUS) AS JOBSTATUS, MIN(JOBMODELNAME) AS JOBMODELNAME,
           MIN(JOBORDERNAME) AS JOBORDERNAME, MIN(CREATEDATE) AS CREATEDATE,
           MIN(COMPLETEDATE) AS COMPLETEDATE, MIN(CANCELDATE) AS CANCELDATE,
           MIN(CAUSECODENAME) AS CAUSECODENAME, MIN(REPAIRCODENAME) AS REPAIRCODENAME,
           MIN(SYMPTOMCODENAME) AS SYMPTOMCODENAME, MIN(CONTAINERNAMES) AS CONTAINERNAMES,
           (epoch(MIN(COMPLETEDATE)) - epoch(MIN(CREATEDATE))) / 3600.0 AS JOB_HOURS,
           COUNT(JOBTXNHISTORYID) AS TXN_COUNT, COUNT(*) AS EXPORT_ROWS
    FROM dataset
    WHERE {{ filters }}
    GROUP BY JOBID
  ) j
) numbered
WHERE RN__ BETWEEN :first_row AND :last_row
ORDER BY RN__
