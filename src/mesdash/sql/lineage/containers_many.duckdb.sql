-- Container attributes for a long id list (more than walks.DUCKDB_INDEX_LOOKUP_MAX), in id
-- order, DuckDB: same columns and rows as containers.sql. DuckDB has no index joins, so a
-- long id list is a hash join against a scan of every container row; here that scan reads
-- the id column alone (for the matching rowids), and the five text columns are read only
-- for those rows (the scan applies the rowid filter itself). On the 1.4M-container `large`
-- warehouse that takes ~30 % less CPU for 17.7K ids (0.14 s -> 0.10 s). A short list of
-- single binds is an index probe, which containers.sql does best (this form would cost
-- 0.025 s instead of 0.010 s for 165 ids).
SELECT a.CONTAINERID AS NODE_ID, a.CONTAINERNAME, a.MFGORDERNAME, a.FIRSTNAME,
       a.OBJECTTYPE, a.ORIGINALCONTAINERID
FROM dwh.DW_MES_CONTAINER a
WHERE a.rowid IN (SELECT c.rowid FROM dwh.DW_MES_CONTAINER c WHERE {{ id_filter }})
ORDER BY a.CONTAINERID
