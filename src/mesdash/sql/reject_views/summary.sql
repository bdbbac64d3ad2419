-- Reject-history summary, computed by the view engine (DuckDB) over the cached dataset,
-- registered as table `dataset`. Charged-off and not-charged-off (DEFECTQTY) stay apart;
-- MOVEINQTY repeats on every reason row of one event, so it counts once per event.
-- {{ filters }} holds the cross-filter selections.
-- example filters: 1 = 1
WITH rows_in AS (
  SELECT * FROM dataset WHERE {{ filters }}
),
events AS (
  SELECT HISTORYMAINLINEID, MAX(COALESCE(MOVEINQTY, 0)) AS MOVEINQTY
  FROM rows_in
  GROUP BY HISTORYMAINLINEID
),
moves AS (
  SELECT COALESCE(SUM(MOVEINQTY), 0) AS MOVEIN_QTY, COUNT(*) AS EVENT_COUNT FROM events
),
totals AS (
  SELECT COALESCE(SUM(CHARGED_OFF_QTY), 0) AS CHARGED_OFF_QTY,
         COALESCE(SUM(COALESCE(DEFECTQTY, 0)), 0) AS DEFECT_QTY,
         COUNT(DISTINCT CONTAINERID) AS AFFECTED_LOTS,
         COUNT(DISTINCT COALESCE(PJ_WORKORDER, MFGORDERNAME)) AS AFFECTED_WORK_ORDERS,
         COUNT(*) AS ROW_COUNT
  FROM rows_in
)
SELECT t.CHARGED_OFF_QTY, t.DEFECT_QTY, m.MOVEIN_QTY, t.AFFECTED_LOTS, t.AFFECTED_WORK_ORDERS,
       t.ROW_COUNT, m.EVENT_COUNT
FROM totals t CROSS JOIN moves m
