-- Benchmark only (bench/lineage.py): the lots to draw seeds from.
SELECT c.CONTAINERID
FROM dwh.DW_MES_CONTAINER c
WHERE c.OBJECTTYPE = 'LOT'
