-- Every selected hold record (view engine: DuckDB) with the derived columns, in {{ order }}
-- (from a sort allow-list, ending with the unique HISTORYMAINLINEID): the CSV export.
-- example quality: HOLDREASONNAME IN ('a')
-- example order: HOLDTXNDATE DESC, HISTORYMAINLINEID
SELECT r.*
FROM {{> hold_views/records }} r
WHERE {{ filters }}
ORDER BY {{ order }}
