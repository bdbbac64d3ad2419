-- Split ancestors of the seeds, Oracle: CONNECT BY NOCYCLE over DW_MES_CONTAINER.SPLITFROMID.
-- Same columns and meaning as split_ancestors.sql: one row per edge (FROM_ID = parent,
-- TO_ID = child) with its shortest depth. seed_ids is a subquery of one column ID (the
-- seeds that exist; built by walks.seed_rows).
--
-- LEVEL 1 is a seed's own row; the row at LEVEL k carries the edge to its parent at depth
-- k. The bound is LEVEL <= :max_depth + 1 (MAX_SPLIT_DEPTH = 20, so LEVEL <= 21): the edges
-- of a 20-edge closure plus one level to see whether the cap cut the chain. NOCYCLE ends
-- cycles and self-references.
-- The rows come in edge order: the engine's result is sorted, which costs little on
-- presorted rows.
-- example seed_ids: SELECT c.CONTAINERID AS ID FROM DWH.DW_MES_CONTAINER c WHERE c.CONTAINERID IN (:p0)
WITH seeds AS (
    {{ seed_ids }}
),
tree AS (
    SELECT c.CONTAINERID, c.SPLITFROMID, LEVEL AS LVL
    FROM DWH.DW_MES_CONTAINER c
    START WITH c.CONTAINERID IN (SELECT ID FROM seeds)
    CONNECT BY NOCYCLE PRIOR c.SPLITFROMID = c.CONTAINERID
           AND LEVEL <= :max_depth + 1
)
-- If the CONNECT BY plan regresses, replace the tree above and the SELECT below with this
-- subquery-factoring walk (same columns; UNION ALL, the CYCLE clause and the depth bound):
--
-- walk (FROM_ID, TO_ID, EDGE_TYPE, DEPTH) AS (
--     SELECT c.SPLITFROMID, c.CONTAINERID, CAST('split_from' AS VARCHAR2(16)), 1
--     FROM DWH.DW_MES_CONTAINER c
--     WHERE c.CONTAINERID IN (SELECT ID FROM seeds)
--       AND c.SPLITFROMID IS NOT NULL
--     UNION ALL
--     SELECT c.SPLITFROMID, c.CONTAINERID, CAST('split_from' AS VARCHAR2(16)), w.DEPTH + 1
--     FROM walk w
--     JOIN DWH.DW_MES_CONTAINER c ON c.CONTAINERID = w.FROM_ID
--     WHERE c.SPLITFROMID IS NOT NULL
--       AND w.DEPTH <= :max_depth
-- ) CYCLE FROM_ID SET IS_CYCLE TO 'Y' DEFAULT 'N'
-- SELECT FROM_ID, TO_ID, EDGE_TYPE, MIN(DEPTH) AS DEPTH
-- FROM walk
-- GROUP BY FROM_ID, TO_ID, EDGE_TYPE
-- ORDER BY FROM_ID, TO_ID, EDGE_TYPE
SELECT t.SPLITFROMID AS FROM_ID, t.CONTAINERID AS TO_ID,
       CAST('split_from' AS VARCHAR2(16)) AS EDGE_TYPE, MIN(t.LVL) AS DEPTH
FROM tree t
WHERE t.SPLITFROMID IS NOT NULL
GROUP BY t.SPLITFROMID, t.CONTAINERID
ORDER BY FROM_ID, TO_ID
