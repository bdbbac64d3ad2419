-- Selected hold records per hold type (view engine: DuckDB): holds, quantity, lots.
-- example quality: HOLDREASONNAME IN ('a')
SELECT HOLD_TYPE, COUNT(*) AS HOLDS, SUM(COALESCE(QTY, 0)) AS QTY,
       COUNT(DISTINCT CONTAINERID) AS LOTS
FROM {{> hold_views/records }} r
WHERE {{ filters }}
GROUP BY HOLD_TYPE
