-- Container attributes for a long id list (more than walks.DUCKDB_INDEX_LOOKUP_MAX): the
-- query of containers.sql, included here; only DuckDB has its own form of it
-- (containers_many.duckdb.sql).
{{> lineage/containers }}
