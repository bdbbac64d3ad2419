-- Split ancestors of the seeds through DW_MES_CONTAINER.SPLITFROMID (child -> parent).
--
-- One row per edge met (FROM_ID = parent, TO_ID = child, EDGE_TYPE 'split_from') with the
-- shortest depth at which the walk met it. The walk starts from the seed_ids slot (a
-- subquery of one column ID, built by walks.seed_rows) and goes :max_depth + 1 edges deep;
-- the extra level shows whether the depth cap cut a chain. A node with no row of its own
-- (a missing seed or parent) is not followed; the engine learns which nodes exist from
-- containers.sql and reports the missing ones.
--
-- UNION (not UNION ALL) with the depth carried ends cycles and self-references: a row can
-- only repeat with a new depth, and the depth is bounded. A node met at several depths
-- keeps the smallest: MIN(DEPTH) per edge.
-- The rows come in edge order: the engine's result is sorted, which costs little on
-- presorted rows.
-- Oracle has no WITH RECURSIVE: split_ancestors.oracle.sql uses CONNECT BY NOCYCLE.
-- example seed_ids: SELECT c.CONTAINERID AS ID FROM dwh.DW_MES_CONTAINER c WHERE c.CONTAINERID IN (:p0)
WITH RECURSIVE walk (FROM_ID, TO_ID, EDGE_TYPE, DEPTH) AS (
    SELECT s.ID, s.ID, 'seed', 0
    FROM ({{ seed_ids }}) s
    UNION
    SELECT c.SPLITFROMID, c.CONTAINERID, 'split_from', w.DEPTH + 1
    FROM walk w
    JOIN dwh.DW_MES_CONTAINER c ON c.CONTAINERID = w.FROM_ID
    WHERE c.SPLITFROMID IS NOT NULL
      AND w.DEPTH <= :max_depth
)
SELECT FROM_ID, TO_ID, EDGE_TYPE, MIN(DEPTH) AS DEPTH
FROM walk
WHERE DEPTH > 0
GROUP BY FROM_ID, TO_ID, EDGE_TYPE
ORDER BY FROM_ID, TO_ID, EDGE_TYPE
