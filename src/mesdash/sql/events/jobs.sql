-- Equipment jobs that name the lots. Candidates come from the lots' own machines and time
-- windows (a job on a machine the lot never ran on cannot name it), then an exact match of
-- the id inside ','||CONTAINERIDS||',' — never a LIKE per lot over the whole JOB table.
-- {{ cid_filter }} restricts l.CONTAINERID; :window_days widens each run's window.
WITH runs AS (
    SELECT l.CONTAINERID, l.EQUIPMENTID,
           MIN(l.TRACKINTIMESTAMP) AS FIRST_IN,
           MAX(COALESCE(l.TRACKOUTTIMESTAMP, l.TRACKINTIMESTAMP)) AS LAST_OUT
    FROM dwh.DW_MES_LOTWIPHISTORY l
    WHERE {{ cid_filter }} AND l.EQUIPMENTID IS NOT NULL AND l.TRACKINTIMESTAMP IS NOT NULL
    GROUP BY l.CONTAINERID, l.EQUIPMENTID
)
SELECT DISTINCT r.CONTAINERID, j.JOBID, j.RESOURCEID, j.RESOURCENAME, j.JOBSTATUS,
       j.JOBMODELNAME, j.JOBORDERNAME, j.CREATEDATE, j.COMPLETEDATE, j.CANCELDATE,
       j.FIRSTCLOCKONDATE, j.LASTCLOCKOFFDATE, j.CAUSECODENAME, j.REPAIRCODENAME,
       j.SYMPTOMCODENAME, j.CREATE_EMPNAME, j.COMPLETE_EMPNAME, j.CONTAINERIDS,
       j.CONTAINERNAMES
FROM runs r
JOIN dwh.DW_MES_JOB j ON j.RESOURCEID = r.EQUIPMENTID
WHERE j.CREATEDATE >= r.FIRST_IN - :window_days * INTERVAL '1' DAY
  AND j.CREATEDATE <= r.LAST_OUT + :window_days * INTERVAL '1' DAY
  AND (',' || j.CONTAINERIDS || ',') LIKE ('%,' || r.CONTAINERID || ',%')
ORDER BY r.CONTAINERID, j.CREATEDATE, j.JOBID
