-- Forward genealogy of the seeds, Oracle: split children (rows whose SPLITFROMID is the
-- node) and the finished lots they were merged into (COMBINEDASSYLOTS: CONTAINERID -> LOTID).
--
-- CONNECT BY NOCYCLE over the split and merge edges together; same columns and meaning as
-- descendants.sql: one row per edge with its shortest depth, and 'seed' rows at depth 0.
-- Rows of the hierarchy are edges and LEVEL is an edge's depth. The bound is
-- LEVEL <= :max_depth + 1 (MAX_SPLIT_DEPTH = 20, so LEVEL <= 21): the edges of a 20-edge
-- closure plus one level to see whether the cap cut it. NOCYCLE ends cycles and
-- self-references; MIN(DEPTH) per edge keeps the shortest path.
WITH seeds AS (
    SELECT c.CONTAINERID AS SEED_ID
    FROM DWH.DW_MES_CONTAINER c
    WHERE {{ seed_filter }}
),
edges AS (
    SELECT c.SPLITFROMID AS FROM_ID, c.CONTAINERID AS TO_ID,
           CAST('split_from' AS VARCHAR2(16)) AS EDGE_TYPE
    FROM DWH.DW_MES_CONTAINER c
    WHERE c.SPLITFROMID IS NOT NULL
    UNION ALL
    SELECT m.CONTAINERID, m.LOTID, CAST('merge_source' AS VARCHAR2(16))
    FROM DWH.DW_MES_PJ_COMBINEDASSYLOTS m
    WHERE m.CONTAINERID IS NOT NULL AND m.LOTID IS NOT NULL
),
walk AS (
    SELECT s.SEED_ID AS FROM_ID, s.SEED_ID AS TO_ID,
           CAST('seed' AS VARCHAR2(16)) AS EDGE_TYPE, 0 AS DEPTH
    FROM seeds s
    UNION ALL
    SELECT e.FROM_ID, e.TO_ID, e.EDGE_TYPE, LEVEL
    FROM edges e
    START WITH e.FROM_ID IN (SELECT SEED_ID FROM seeds)
    CONNECT BY NOCYCLE PRIOR e.TO_ID = e.FROM_ID
           AND LEVEL <= :max_depth + 1
)
-- If the CONNECT BY plan regresses, replace the walk above with this subquery-factoring
-- walk (same columns; UNION ALL, the CYCLE clause and the depth bound):
--
-- walk (FROM_ID, TO_ID, EDGE_TYPE, DEPTH) AS (
--     SELECT s.SEED_ID, s.SEED_ID, CAST('seed' AS VARCHAR2(16)), 0
--     FROM seeds s
--     UNION ALL
--     SELECT e.FROM_ID, e.TO_ID, e.EDGE_TYPE, w.DEPTH + 1
--     FROM walk w
--     JOIN edges e ON e.FROM_ID = w.TO_ID
--     WHERE w.DEPTH <= :max_depth
-- ) CYCLE FROM_ID, TO_ID SET IS_CYCLE TO 'Y' DEFAULT 'N'
SELECT FROM_ID, TO_ID, EDGE_TYPE, MIN(DEPTH) AS DEPTH
FROM walk
GROUP BY FROM_ID, TO_ID, EDGE_TYPE
