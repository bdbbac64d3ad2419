-- E10 hours of the machines in [start_ts, end_ts): RESOURCESTATUS_SHIFT rows by shift start
-- (TXNDATE); the state held during the interval is OLDSTATUSNAME. Only the six equipment
-- states count (carrier states such as 載具-IDLE are not equipment time). One row per
-- (machine, state); chunks of a long range are summed in code.
-- {{ equipment_filter }}: the machines (on s.HISTORYID).
SELECT s.HISTORYID AS EQUIPMENTID, MIN(r.RESOURCENAME) AS EQUIPMENTNAME,
       s.OLDSTATUSNAME AS STATUS, SUM(s.HOURS) AS HOURS
FROM dwh.DW_MES_RESOURCESTATUS_SHIFT s
LEFT JOIN dwh.DW_MES_RESOURCE r ON r.RESOURCEID = s.HISTORYID
WHERE {{ equipment_filter }} AND s.TXNDATE >= :start_ts AND s.TXNDATE < :end_ts
  AND s.OLDSTATUSNAME IN ('PRD', 'SBY', 'UDT', 'SDT', 'EGT', 'NST')
GROUP BY s.HISTORYID, s.OLDSTATUSNAME
