-- Defects found at the detection station group (:station), per lot and loss reason: the
-- charged-off buckets (REJECTQTY + STANDBYQTY + QTYTOPROCESS + INPROCESSQTY + PROCESSEDQTY)
-- and DEFECTQTY apart. The reason policy is reject history's (sql/reject/reject_history.sql):
-- names of three digits and an underscore whose code (or whole name) is not an enabled
-- exclusion; :include_excluded_scrap = 1 lifts it. {{ filters }}: the reject time window
-- and / or a CONTAINERID IN-list.
-- example filters: r.TXNDATE >= :start_ts AND r.TXNDATE < :end_ts
SELECT r.CONTAINERID, r.LOSSREASONNAME,
       SUM(COALESCE(r.REJECTQTY, 0) + COALESCE(r.STANDBYQTY, 0) + COALESCE(r.QTYTOPROCESS, 0)
           + COALESCE(r.INPROCESSQTY, 0) + COALESCE(r.PROCESSEDQTY, 0)) AS CHARGED_OFF_QTY,
       SUM(COALESCE(r.DEFECTQTY, 0)) AS DEFECTQTY,
       MIN(r.TXNDATE) AS FIRST_TXNDATE
FROM dwh.DW_MES_LOTREJECTHISTORY r
JOIN {{> common/spec_groups }} w ON w.SPEC = r.SPECNAME
WHERE w.WORK_CENTER_GROUP = :station
  AND {{ filters }}
  AND (:include_excluded_scrap = 1 OR (
        SUBSTR(r.LOSSREASONNAME, 1, 1) BETWEEN '0' AND '9'
        AND SUBSTR(r.LOSSREASONNAME, 2, 1) BETWEEN '0' AND '9'
        AND SUBSTR(r.LOSSREASONNAME, 3, 1) BETWEEN '0' AND '9'
        AND SUBSTR(r.LOSSREASONNAME, 4, 1) = '_'
        AND NOT EXISTS (
          SELECT 1 FROM dwh.ERP_PJ_WIP_SCRAP_REASONS_EXCLUDE e
          WHERE e.ENABLE_FLAG = 'Y'
            AND (e.REASON_NAME = SUBSTR(r.LOSSREASONNAME, 1, 3) OR e.REASON_NAME = r.LOSSREASONNAME))))
GROUP BY r.CONTAINERID, r.LOSSREASONNAME
