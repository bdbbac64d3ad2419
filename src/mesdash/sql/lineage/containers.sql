-- Container attributes for the lineage nodes (names, work order, wafer lot, type), in id
-- order: the engine's result is sorted by id, and sorting presorted ids is nearly free.
SELECT c.CONTAINERID AS NODE_ID, c.CONTAINERNAME, c.MFGORDERNAME, c.FIRSTNAME,
       c.OBJECTTYPE, c.ORIGINALCONTAINERID
FROM dwh.DW_MES_CONTAINER c
WHERE {{ id_filter }}
ORDER BY c.CONTAINERID
