-- One page of the selected hold records (view engine: DuckDB) with the derived columns:
-- the page's keys are found on a narrow sort (skip :skip, take :take), then only those rows
-- are read whole. {{ order }} comes from a sort allow-list and ends with the unique
-- HISTORYMAINLINEID.
-- example quality: HOLDREASONNAME IN ('a')
-- example order: HOLDTXNDATE DESC, HISTORYMAINLINEID
WITH page AS (
  SELECT r.HISTORYMAINLINEID AS PAGE_ID
  FROM {{> hold_views/records }} r
  WHERE {{ filters }}
  ORDER BY {{ order }}
  OFFSET :skip ROWS FETCH NEXT :take ROWS ONLY
)
SELECT r.*
FROM {{> hold_views/records }} r
JOIN page p ON p.PAGE_ID = r.HISTORYMAINLINEID
ORDER BY {{ order }}
