-- Pareto of one dimension over the cached dataset (view engine: DuckDB, table `dataset`):
-- per item the measure, the not-charged-off quantity and affected lots, biggest first,
-- with the running total for cumulative %. {{ dimension }} and {{ measure }} come from
-- code allow-lists; {{ filters }} holds the other dimensions' selections.
-- example dimension: LOSSREASONNAME
-- example measure: CHARGED_OFF_QTY
-- example filters: 1 = 1
WITH agg AS (
  SELECT COALESCE({{ dimension }}, '(none)') AS ITEM,
         SUM({{ measure }}) AS QTY,
         SUM(CHARGED_OFF_QTY) AS CHARGED_OFF_QTY,
         SUM(COALESCE(DEFECTQTY, 0)) AS DEFECT_QTY,
         COUNT(DISTINCT CONTAINERID) AS LOTS
  FROM dataset
  WHERE {{ filters }}
  GROUP BY COALESCE({{ dimension }}, '(none)')
)
SELECT ITEM, QTY, CHARGED_OFF_QTY, DEFECT_QTY, LOTS,
       SUM(QTY) OVER (ORDER BY QTY DESC, ITEM ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS CUM_QTY,
       SUM(QTY) OVER () AS ALL_QTY
FROM agg
ORDER BY QTY DESC, ITEM
