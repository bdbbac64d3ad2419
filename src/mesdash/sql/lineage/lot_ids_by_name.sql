-- Container ids by lot name (CONTAINERNAME), for the command line.
SELECT c.CONTAINERNAME, c.CONTAINERID
FROM dwh.DW_MES_CONTAINER c
WHERE {{ name_filter }}
ORDER BY c.CONTAINERNAME, c.CONTAINERID
