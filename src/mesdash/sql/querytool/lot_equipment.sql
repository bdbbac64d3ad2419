-- Machines the lots ran on: one row per (lot, station group, machine) with the first
-- track-in, the last track-out and the number of loads (partial track-outs of one load
-- share a TRACKINTIMESTAMP). Checkpoint rows (no machine or no track-in) are skipped. A
-- spec the work-center view does not know keeps its WORKCENTERNAME as the group and sorts
-- last (order 999). {{ cid_filter }}: the lots (on h.CONTAINERID).
SELECT h.CONTAINERID,
       COALESCE(w.WORK_CENTER_GROUP, h.WORKCENTERNAME) AS WORKCENTER_GROUP,
       COALESCE(w.WORKCENTERSEQUENCE_GROUP, '999') AS WORKCENTER_GROUP_ORDER,
       h.EQUIPMENTID, MIN(h.EQUIPMENTNAME) AS EQUIPMENTNAME,
       MIN(h.TRACKINTIMESTAMP) AS FIRST_TRACKIN, MAX(h.TRACKOUTTIMESTAMP) AS LAST_TRACKOUT,
       COUNT(DISTINCT h.TRACKINTIMESTAMP) AS LOADS
FROM dwh.DW_MES_LOTWIPHISTORY h
LEFT JOIN {{> common/spec_groups }} w ON w.SPEC = h.SPECNAME
WHERE {{ cid_filter }} AND h.EQUIPMENTID IS NOT NULL AND h.TRACKINTIMESTAMP IS NOT NULL
GROUP BY h.CONTAINERID, COALESCE(w.WORK_CENTER_GROUP, h.WORKCENTERNAME),
         COALESCE(w.WORKCENTERSEQUENCE_GROUP, '999'), h.EQUIPMENTID
ORDER BY h.CONTAINERID, MIN(h.TRACKINTIMESTAMP), h.EQUIPMENTID
