-- The start of a walk (genealogy, descendants, split_ancestors): the seeds that exist, as a
-- subquery of one column ID, found through the CONTAINERID index. On DuckDB, which has no
-- index joins and would scan every container row for this, the walks start from the seed
-- ids themselves instead (walks.LineageReader.seed_rows).
SELECT c.CONTAINERID AS ID
FROM dwh.DW_MES_CONTAINER c
WHERE {{ id_filter }}
