-- Reject-history dataset: one row per reject reason row in {{ scope }} (date mode: a
-- factory-day window [start_ts, end_ts); container mode: a batch of CONTAINERIDs), with the
-- lot's dimensions, the work-center group and the charged-off total
-- (REJECTQTY + STANDBYQTY + QTYTOPROCESS + INPROCESSQTY + PROCESSEDQTY; DEFECTQTY apart).
-- Policy flags are binds (1/0): the default reason policy keeps names that start with three
-- digits and an underscore and whose code (or whole name) is not an enabled exclusion;
-- include_excluded_scrap lifts it. Material scrap: OBJECTTYPE 'MATERIAL'. PB diodes:
-- PRODUCTLINENAME LIKE 'PB\_%'. {{ filters }} holds the optional list filters.
-- example scope: r.TXNDATE >= :start_ts AND r.TXNDATE < :end_ts
-- example filters: 1 = 1
SELECT r.CONTAINERID, c.CONTAINERNAME, c.MFGORDERNAME, r.PJ_WORKORDER, c.PRODUCTLINENAME,
       c.PJ_TYPE, c.PJ_FUNCTION, c.OBJECTTYPE, r.WORKCENTERNAME,
       w.WORK_CENTER_GROUP AS WORKCENTER_GROUP, r.SPECNAME, r.EQUIPMENTNAME, r.LOSSREASONNAME,
       r.REJECTQTY, r.STANDBYQTY, r.QTYTOPROCESS, r.INPROCESSQTY, r.PROCESSEDQTY,
       r.DEFECTQTY, r.MOVEINQTY, r.TXNDATE, r.HISTORYMAINLINEID,
       COALESCE(r.REJECTQTY, 0) + COALESCE(r.STANDBYQTY, 0) + COALESCE(r.QTYTOPROCESS, 0)
         + COALESCE(r.INPROCESSQTY, 0) + COALESCE(r.PROCESSEDQTY, 0) AS CHARGED_OFF_QTY
FROM dwh.DW_MES_LOTREJECTHISTORY r
LEFT JOIN dwh.DW_MES_CONTAINER c ON c.CONTAINERID = r.CONTAINERID
LEFT JOIN {{> common/spec_groups }} w ON w.SPEC = r.SPECNAME
WHERE {{ scope }}
  AND (:include_excluded_scrap = 1 OR (
        SUBSTR(r.LOSSREASONNAME, 1, 1) BETWEEN '0' AND '9'
        AND SUBSTR(r.LOSSREASONNAME, 2, 1) BETWEEN '0' AND '9'
        AND SUBSTR(r.LOSSREASONNAME, 3, 1) BETWEEN '0' AND '9'
        AND SUBSTR(r.LOSSREASONNAME, 4, 1) = '_'
        AND NOT EXISTS (
          SELECT 1 FROM dwh.ERP_PJ_WIP_SCRAP_REASONS_EXCLUDE e
          WHERE e.ENABLE_FLAG = 'Y'
            AND (e.REASON_NAME = SUBSTR(r.LOSSREASONNAME, 1, 3) OR e.REASON_NAME = r.LOSSREASONNAME))))
  AND (:exclude_material_scrap = 0 OR COALESCE(c.OBJECTTYPE, ' ') <> 'MATERIAL')
  AND (:exclude_pb_diode = 0 OR COALESCE(c.PRODUCTLINENAME, ' ') NOT LIKE 'PB\_%' ESCAPE '\')
  AND {{ filters }}
