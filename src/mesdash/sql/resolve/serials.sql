-- Finished lots by finished-goods serial (PJ_COMBINEDASSYLOTS.FINISHEDNAME): the lot named
-- by LOTID, not its merge sources (lineage reaches those). One row per (serial, lot) although
-- the table holds one row per source. :cap = limit + 1 detects an expansion over the limit.
-- example match_column: m.FINISHEDNAME
SELECT DISTINCT {{ match_column }} AS MATCH_VALUE,
       c.CONTAINERID, c.CONTAINERNAME, c.MFGORDERNAME, c.FIRSTNAME, c.SPECNAME, c.QTY
FROM dwh.DW_MES_PJ_COMBINEDASSYLOTS m
JOIN dwh.DW_MES_CONTAINER c ON c.CONTAINERID = m.LOTID
WHERE c.OBJECTTYPE = 'LOT'
  AND {{ filters }}
FETCH FIRST :cap ROWS ONLY
