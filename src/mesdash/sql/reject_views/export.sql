-- Every row of the cached dataset (view engine: DuckDB, table `dataset`) for the CSV
-- export, in the order built from the sort allow-list (ending with a full tie-breaker).
-- example order: TXNDATE, HISTORYMAINLINEID, LOSSREASONNAME, CONTAINERID
-- example filters: 1 = 1
SELECT d.*
FROM dataset d
WHERE {{ filters }}
ORDER BY {{ order }}
