-- One page of the cached dataset (view engine: DuckDB, table `dataset`): :skip_rows rows
-- skipped, then at most :page_rows. {{ order }} is built from a sort allow-list and always
-- ends with a tie-breaker over every column, so pages never overlap. OFFSET / FETCH lets the
-- engine keep only the top rows instead of numbering the whole set.
-- example order: TXNDATE DESC, HISTORYMAINLINEID, LOSSREASONNAME, CONTAINERID
-- example filters: 1 = 1
SELECT d.*
FROM dataset d
WHERE {{ filters }}
ORDER BY {{ order }}
OFFSET :skip_rows ROWS FETCH NEXT :page_rows ROWS ONLY
