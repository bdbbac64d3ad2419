-- The Oracle walk of genealogy.oracle.sql (backward) and descendants.oracle.sql (forward),
-- which include it: split edges (DW_MES_CONTAINER: SPLITFROMID -> CONTAINERID) and merge
-- edges (DW_MES_PJ_COMBINEDASSYLOTS: source CONTAINERID -> finished LOTID) together.
--
-- CONNECT BY NOCYCLE over the split and merge edges; same columns and meaning as the
-- portable genealogy.sql / descendants.sql: one row per edge met (FROM_ID upstream ->
-- TO_ID downstream) with its shortest depth. Rows of the hierarchy are edges and LEVEL is
-- an edge's depth. The direction is two structural slots filled by the engine (walks.py):
-- near is the edge's end at the seed's side and far the end the walk moves on to (backward:
-- TO_ID, FROM_ID; forward: FROM_ID, TO_ID). seed_ids is a subquery of one column ID (the
-- seeds that exist). The bound is LEVEL <= :max_depth + 1 (MAX_SPLIT_DEPTH = 20, so
-- LEVEL <= 21): the edges of a 20-edge closure plus one level to see whether the cap cut
-- it. NOCYCLE ends cycles and self-references; MIN(DEPTH) per edge keeps the shortest path.
-- The rows come in edge order: the engine's result is sorted, which costs little on
-- presorted rows.
-- example seed_ids: SELECT c.CONTAINERID AS ID FROM DWH.DW_MES_CONTAINER c WHERE c.CONTAINERID IN (:p0)
-- example near: TO_ID
-- example far: FROM_ID
WITH seeds AS (
    {{ seed_ids }}
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
    SELECT e.FROM_ID, e.TO_ID, e.EDGE_TYPE, LEVEL AS DEPTH
    FROM edges e
    START WITH e.{{ near }} IN (SELECT ID FROM seeds)
    CONNECT BY NOCYCLE PRIOR e.{{ far }} = e.{{ near }}
           AND LEVEL <= :max_depth + 1
)
-- If the CONNECT BY plan regresses, replace the walk above with this subquery-factoring
-- walk (same columns; UNION ALL, the CYCLE clause and the depth bound):
--
-- walk (FROM_ID, TO_ID, EDGE_TYPE, DEPTH) AS (
--     SELECT e.FROM_ID, e.TO_ID, e.EDGE_TYPE, 1
--     FROM edges e
--     WHERE e.{{ near }} IN (SELECT ID FROM seeds)
--     UNION ALL
--     SELECT e.FROM_ID, e.TO_ID, e.EDGE_TYPE, w.DEPTH + 1
--     FROM walk w
--     JOIN edges e ON e.{{ near }} = w.{{ far }}
--     WHERE w.DEPTH <= :max_depth
-- ) CYCLE FROM_ID, TO_ID SET IS_CYCLE TO 'Y' DEFAULT 'N'
SELECT FROM_ID, TO_ID, EDGE_TYPE, MIN(DEPTH) AS DEPTH
FROM walk
GROUP BY FROM_ID, TO_ID, EDGE_TYPE
ORDER BY FROM_ID, TO_ID, EDGE_TYPE
