-- Benchmark baseline only (bench/lineage.py): ONE node — whether it exists, its split
-- parent and its merge sources — the way node-by-node tools walk a genealogy, one query
-- per node.
SELECT 'self' AS KIND, c.CONTAINERID AS ID
FROM dwh.DW_MES_CONTAINER c
WHERE c.CONTAINERID = :node_id
UNION ALL
SELECT 'split_from', c.SPLITFROMID
FROM dwh.DW_MES_CONTAINER c
WHERE c.CONTAINERID = :node_id AND c.SPLITFROMID IS NOT NULL
UNION ALL
SELECT 'merge_source', m.CONTAINERID
FROM dwh.DW_MES_PJ_COMBINEDASSYLOTS m
WHERE m.LOTID = :node_id AND m.CONTAINERID IS NOT NULL
