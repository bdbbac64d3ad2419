-- Lot history on DuckDB: history.sql with the batch's lot filter applied to the containers
-- too. Without it DuckDB builds the join's hash table from every container (1.4M rows on the
-- large warehouse) for each batch: three times slower, and that memory stays with the
-- process. The filter fragment names h.CONTAINERID, so the containers are read under the
-- alias h inside their subquery; the rows are history.sql's (an inner join on the id).
{{> events/history_columns }}
FROM dwh.DW_MES_LOTWIPHISTORY h
JOIN (
    SELECT h.CONTAINERID, h.CONTAINERNAME, h.PJ_TYPE, h.PRODUCTLINENAME, h.FIRSTNAME
    FROM dwh.DW_MES_CONTAINER h
    WHERE {{ cid_filter }}
) c ON c.CONTAINERID = h.CONTAINERID
LEFT JOIN {{> common/spec_groups }} w ON w.SPEC = h.SPECNAME
WHERE {{ cid_filter }}
ORDER BY h.CONTAINERID, h.MOVEINTIMESTAMP, h.TRACKINTIMESTAMP
