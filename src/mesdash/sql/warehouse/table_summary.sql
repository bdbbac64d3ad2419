-- One table's row count and the span of its main timestamp (home page summary).
-- The table and timestamp slots are filled from code (core/db/schema), never from input;
-- the service joins one SELECT per table with UNION ALL: a single round trip.
-- example table: DW_MES_LOTREJECTHISTORY
-- example ts: TXNDATE
SELECT '{{ table }}' AS TABLE_NAME,
       COUNT(*) AS ROW_COUNT,
       MIN({{ ts }}) AS FIRST_AT,
       MAX({{ ts }}) AS LAST_AT
FROM dwh.{{ table }}
