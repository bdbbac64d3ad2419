-- Equipment-history dataset for [start_ts, end_ts): one row per machine and factory day
-- (resource/event_day, the dialect's part) with the E10 hours per state held (OLDSTATUSNAME),
-- the track-out output (SUM(TRACKOUTQTY) of the partial track-outs) and the rejected
-- quantity (charged-off plus DEFECTQTY), with the machine's dimensions. Other status names
-- (carriers) are not equipment time. {{ filters }} narrows the machines (r = RESOURCE,
-- g = its work-center group).
-- example filters: 1 = 1
WITH machines AS (
  {{> resource/equipment }} AND {{ filters }}
),
events AS (  -- every state record, track-out and reject of the machines, at its time TS
  SELECT s.HISTORYID AS RESOURCEID, s.TXNDATE AS TS,
         CASE WHEN s.OLDSTATUSNAME = 'PRD' THEN s.HOURS ELSE 0 END AS PRD,
         CASE WHEN s.OLDSTATUSNAME = 'SBY' THEN s.HOURS ELSE 0 END AS SBY,
         CASE WHEN s.OLDSTATUSNAME = 'UDT' THEN s.HOURS ELSE 0 END AS UDT,
         CASE WHEN s.OLDSTATUSNAME = 'SDT' THEN s.HOURS ELSE 0 END AS SDT,
         CASE WHEN s.OLDSTATUSNAME = 'EGT' THEN s.HOURS ELSE 0 END AS EGT,
         CASE WHEN s.OLDSTATUSNAME = 'NST' THEN s.HOURS ELSE 0 END AS NST,
         0 AS OUTPUT_QTY, 0 AS NG_QTY
  FROM dwh.DW_MES_RESOURCESTATUS_SHIFT s
  JOIN machines m ON m.RESOURCEID = s.HISTORYID
  WHERE s.TXNDATE >= :start_ts AND s.TXNDATE < :end_ts
    AND s.OLDSTATUSNAME IN ('PRD', 'SBY', 'UDT', 'SDT', 'EGT', 'NST')
  UNION ALL
  SELECT l.EQUIPMENTID, l.TRACKOUTTIMESTAMP, 0, 0, 0, 0, 0, 0, COALESCE(l.TRACKOUTQTY, 0), 0
  FROM dwh.DW_MES_LOTWIPHISTORY l
  JOIN machines m ON m.RESOURCEID = l.EQUIPMENTID
  WHERE l.TRACKOUTTIMESTAMP >= :start_ts AND l.TRACKOUTTIMESTAMP < :end_ts
  UNION ALL
  SELECT m.RESOURCEID, j.TXNDATE, 0, 0, 0, 0, 0, 0, 0,
         COALESCE(j.REJECTQTY, 0) + COALESCE(j.STANDBYQTY, 0) + COALESCE(j.QTYTOPROCESS, 0)
         + COALESCE(j.INPROCESSQTY, 0) + COALESCE(j.PROCESSEDQTY, 0) + COALESCE(j.DEFECTQTY, 0)
  FROM dwh.DW_MES_LOTREJECTHISTORY j
  JOIN machines m ON m.RESOURCENAME = j.EQUIPMENTNAME
  WHERE j.TXNDATE >= :start_ts AND j.TXNDATE < :end_ts
),
facts AS (
  SELECT d.RESOURCEID, d.FDAY, SUM(d.PRD) AS PRD, SUM(d.SBY) AS SBY, SUM(d.UDT) AS UDT,
         SUM(d.SDT) AS SDT, SUM(d.EGT) AS EGT, SUM(d.NST) AS NST,
         SUM(d.OUTPUT_QTY) AS OUTPUT_QTY, SUM(d.NG_QTY) AS NG_QTY
  FROM (SELECT e.*, {{> resource/event_day }} AS FDAY FROM events e) d
  GROUP BY d.RESOURCEID, d.FDAY
)
SELECT m.RESOURCEID, m.RESOURCENAME, m.RESOURCEFAMILYNAME, m.LOCATIONNAME, m.WORKCENTERNAME,
       m.WORKCENTER_GROUP, m.PJ_ISPRODUCTION, m.PJ_ISKEY, m.PJ_ISMONITOR, f.FDAY,
       f.PRD, f.SBY, f.UDT, f.SDT, f.EGT, f.NST, f.OUTPUT_QTY, f.NG_QTY
FROM facts f
JOIN machines m ON m.RESOURCEID = f.RESOURCEID
