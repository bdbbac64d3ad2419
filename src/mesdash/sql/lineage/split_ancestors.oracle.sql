-- Split ancestors of the seeds, Oracle: CONNECT BY NOCYCLE over DW_MES_CONTAINER.SPLITFROMID.
-- Same columns and meaning as split_ancestors.sql: one row per edge (FROM_ID = parent,
-- TO_ID = child) with its shortest depth, and 'seed' rows at depth 0.
--
-- LEVEL 1 is a seed row; the row at LEVEL k carries the edge to its parent at depth k.
-- The bound is LEVEL <= :max_depth + 1 (MAX_SPLIT_DEPTH = 20, so LEVEL <= 21): the edges
-- of a 20-edge closure plus one level to see whether the cap cut the chain. NOCYCLE ends
-- cycles and self-references.
WITH tree AS (
    SELECT c.CONTAINERID, c.SPLITFROMID, LEVEL AS LVL
    FROM DWH.DW_MES_CONTAINER c
    START WITH {{ seed_filter }}
    CONNECT BY NOCYCLE PRIOR c.SPLITFROMID = c.CONTAINERID
           AND LEVEL <= :max_depth + 1
),
walk AS (
    SELECT t.CONTAINERID AS FROM_ID, t.CONTAINERID AS TO_ID,
           CAST('seed' AS VARCHAR2(16)) AS EDGE_TYPE, 0 AS DEPTH
    FROM tree t
    WHERE t.LVL = 1
    UNION ALL
    SELECT t.SPLITFROMID, t.CONTAINERID, CAST('split_from' AS VARCHAR2(16)), t.LVL
    FROM tree t
    WHERE t.SPLITFROMID IS NOT NULL
)
-- If the CONNECT BY plan regresses, replace the two blocks above with this subquery-
-- factoring walk (same columns; UNION ALL, the CYCLE clause and the depth bound):
--
-- WITH walk (FROM_ID, TO_ID, EDGE_TYPE, DEPTH) AS (
--     SELECT c.CONTAINERID, c.CONTAINERID, CAST('seed' AS VARCHAR2(16)), 0
--     FROM DWH.DW_MES_CONTAINER c
--     WHERE {{ seed_filter }}
--     UNION ALL
--     SELECT c.SPLITFROMID, c.CONTAINERID, CAST('split_from' AS VARCHAR2(16)), w.DEPTH + 1
--     FROM walk w
--     JOIN DWH.DW_MES_CONTAINER c ON c.CONTAINERID = w.FROM_ID
--     WHERE c.SPLITFROMID IS NOT NULL
--       AND w.DEPTH <= :max_depth
-- ) CYCLE FROM_ID SET IS_CYCLE TO 'Y' DEFAULT 'N'
SELECT FROM_ID, TO_ID, EDGE_TYPE, MIN(DEPTH) AS DEPTH
FROM walk
GROUP BY FROM_ID, TO_ID, EDGE_TYPE
