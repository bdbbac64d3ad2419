-- One page (or every row) of the equipment aggregate (view engine: DuckDB) grouped by
-- {{ keys }}, in that order; rows :first_row .. :last_row (1-based, inclusive).
-- example keys: RESOURCENAME, RESOURCEID, PERIOD
SELECT * FROM (
  SELECT a.*, ROW_NUMBER() OVER (ORDER BY {{ keys }}) AS RN__, COUNT(*) OVER () AS TOTAL__
  FROM (
{{> resource_views/aggregate }}
  ) a
) n
WHERE RN__ BETWEEN :first_row AND :last_row
ORDER BY RN__
