-- Rows of the cached dataset (view engine: DuckDB, table `dataset`) under the cross-filter
-- selections: the list's total.
-- example filters: 1 = 1
SELECT COUNT(*) AS ROW_COUNT FROM dataset WHERE {{ filters }}
