-- Backward genealogy of the seeds: split parents (DW_MES_CONTAINER.SPLITFROMID) and merge
-- sources (DW_MES_PJ_COMBINEDASSYLOTS: source CONTAINERID -> finished LOTID) together, so a
-- merge source's own split ancestors and their merges are followed too.
--
-- One row per edge met (FROM_ID upstream -> TO_ID downstream, EDGE_TYPE 'split_from' or
-- 'merge_source') with the shortest depth at which the walk met it. The walk starts from
-- the seed_ids slot (a subquery of one column ID, built by walks.seed_rows) and goes
-- :max_depth + 1 edges deep; the extra level shows whether the cap cut a closure. The walk
-- does not test that a node exists (the recursive step stays one lookup, and on DuckDB the
-- start reads no table): the engine learns which nodes exist, seeds included, from
-- containers.sql and follows only those, so at worst a few extra rows come.
--
-- Each step is a LATERAL lookup of the frontier node's edges, so PostgreSQL probes the
-- join-key indexes per node instead of hashing both tables on every iteration (DuckDB
-- plans it as one hash join, built once, over both edge tables).
-- UNION (not UNION ALL) with the depth carried ends cycles: a row can only repeat with a
-- new, bounded depth. MIN(DEPTH) per edge keeps the shortest path.
-- The rows come in edge order: the engine's result is sorted, which costs little on
-- presorted rows.
-- Oracle has no WITH RECURSIVE: genealogy.oracle.sql uses CONNECT BY NOCYCLE.
-- example seed_ids: SELECT c.CONTAINERID AS ID FROM dwh.DW_MES_CONTAINER c WHERE c.CONTAINERID IN (:p0)
WITH RECURSIVE walk (FROM_ID, TO_ID, EDGE_TYPE, DEPTH) AS (
    SELECT s.ID, s.ID, 'seed', 0
    FROM ({{ seed_ids }}) s
    UNION
    SELECT e.FROM_ID, e.TO_ID, e.EDGE_TYPE, w.DEPTH + 1
    FROM walk w
    CROSS JOIN LATERAL (
        SELECT c.SPLITFROMID AS FROM_ID, c.CONTAINERID AS TO_ID, 'split_from' AS EDGE_TYPE
        FROM dwh.DW_MES_CONTAINER c
        WHERE c.CONTAINERID = w.FROM_ID AND c.SPLITFROMID IS NOT NULL
        UNION ALL
        SELECT m.CONTAINERID, m.LOTID, 'merge_source'
        FROM dwh.DW_MES_PJ_COMBINEDASSYLOTS m
        WHERE m.LOTID = w.FROM_ID AND m.CONTAINERID IS NOT NULL
    ) e
    WHERE w.DEPTH <= :max_depth
)
SELECT FROM_ID, TO_ID, EDGE_TYPE, MIN(DEPTH) AS DEPTH
FROM walk
WHERE DEPTH > 0
GROUP BY FROM_ID, TO_ID, EDGE_TYPE
ORDER BY FROM_ID, TO_ID, EDGE_TYPE
