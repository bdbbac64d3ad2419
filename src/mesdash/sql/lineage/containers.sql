-- Container attributes for the lineage nodes (names, work order, wafer lot, type).
SELECT c.CONTAINERID AS NODE_ID, c.CONTAINERNAME, c.MFGORDERNAME, c.FIRSTNAME,
       c.OBJECTTYPE, c.ORIGINALCONTAINERID
FROM dwh.DW_MES_CONTAINER c
WHERE {{ id_filter }}
