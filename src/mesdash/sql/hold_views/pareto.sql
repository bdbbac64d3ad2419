-- Hold reasons of the selected records (view engine: DuckDB), most holds first, with the
-- running count for cumulative %. {{ filters }} holds hold type, record type, day and
-- reason selections; {{ quality }} the configured quality reasons.
-- example quality: HOLDREASONNAME IN ('a')
WITH agg AS (
  SELECT COALESCE(HOLDREASONNAME, '(none)') AS ITEM, COUNT(*) AS HOLDS,
         SUM(COALESCE(QTY, 0)) AS QTY, COUNT(DISTINCT CONTAINERID) AS LOTS,
         MIN(HOLD_TYPE) AS HOLD_TYPE
  FROM {{> hold_views/records }} r
  WHERE {{ filters }}
  GROUP BY COALESCE(HOLDREASONNAME, '(none)')
)
SELECT ITEM, HOLDS, QTY, LOTS, HOLD_TYPE,
       SUM(HOLDS) OVER (ORDER BY HOLDS DESC, ITEM ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS CUM_HOLDS,
       SUM(HOLDS) OVER () AS ALL_HOLDS
FROM agg
ORDER BY HOLDS DESC, ITEM
