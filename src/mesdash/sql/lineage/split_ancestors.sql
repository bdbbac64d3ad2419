-- Split ancestors of the seeds through DW_MES_CONTAINER.SPLITFROMID (child -> parent).
--
-- One row per edge met (FROM_ID = parent, TO_ID = child, EDGE_TYPE 'split_from') with the
-- shortest depth at which the walk met it. The seeds come as 'seed' rows (FROM_ID = TO_ID,
-- DEPTH 0): a seed missing from the warehouse has none. The walk goes :max_depth + 1 edges
-- deep; the extra level shows whether the depth cap cut a chain. A parent with no row of
-- its own is not followed; the engine reports it (its attributes come from containers.sql).
--
-- UNION (not UNION ALL) with the depth carried ends cycles and self-references: a row can
-- only repeat with a new depth, and the depth is bounded. A node met at several depths
-- keeps the smallest: MIN(DEPTH) per edge.
-- Oracle has no WITH RECURSIVE: split_ancestors.oracle.sql uses CONNECT BY NOCYCLE.
WITH RECURSIVE walk (FROM_ID, TO_ID, EDGE_TYPE, DEPTH) AS (
    SELECT c.CONTAINERID, c.CONTAINERID, 'seed', 0
    FROM dwh.DW_MES_CONTAINER c
    WHERE {{ seed_filter }}
    UNION
    SELECT c.SPLITFROMID, c.CONTAINERID, 'split_from', w.DEPTH + 1
    FROM walk w
    JOIN dwh.DW_MES_CONTAINER c ON c.CONTAINERID = w.FROM_ID
    WHERE c.SPLITFROMID IS NOT NULL
      AND w.DEPTH <= :max_depth
)
SELECT FROM_ID, TO_ID, EDGE_TYPE, MIN(DEPTH) AS DEPTH
FROM walk
GROUP BY FROM_ID, TO_ID, EDGE_TYPE
