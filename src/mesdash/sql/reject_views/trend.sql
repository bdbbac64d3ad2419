-- Trend over the cached dataset (view engine: DuckDB, table `dataset`) per factory-day
-- bucket: a row's factory day is TXNDATE minus the 07:30 shift (:shift); {{ bucket }} turns
-- the day into its day / week / month. MOVEINQTY counts once per event, in the event's bucket.
-- example bucket: FDAY
-- example filters: 1 = 1
WITH rows_in AS (
  SELECT d.*, CAST(d.TXNDATE - :shift AS DATE) AS FDAY FROM dataset d WHERE {{ filters }}
),
bucketed AS (
  SELECT CAST({{ bucket }} AS DATE) AS BUCKET, HISTORYMAINLINEID, CONTAINERID, CHARGED_OFF_QTY,
         COALESCE(DEFECTQTY, 0) AS DEFECT_QTY, COALESCE(MOVEINQTY, 0) AS MOVEINQTY
  FROM rows_in
),
events AS (
  SELECT BUCKET, HISTORYMAINLINEID, MAX(MOVEINQTY) AS MOVEINQTY
  FROM bucketed
  GROUP BY BUCKET, HISTORYMAINLINEID
),
moves AS (
  SELECT BUCKET, SUM(MOVEINQTY) AS MOVEIN_QTY FROM events GROUP BY BUCKET
)
SELECT b.BUCKET, SUM(b.CHARGED_OFF_QTY) AS CHARGED_OFF_QTY, SUM(b.DEFECT_QTY) AS DEFECT_QTY,
       MAX(m.MOVEIN_QTY) AS MOVEIN_QTY, COUNT(DISTINCT b.CONTAINERID) AS LOTS
FROM bucketed b JOIN moves m ON m.BUCKET = b.BUCKET
GROUP BY b.BUCKET
ORDER BY b.BUCKET
