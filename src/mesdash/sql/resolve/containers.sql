-- Lots (OBJECTTYPE 'LOT', never material containers) whose {{ match_column }} matches the
-- inputs, with the matched value. No ORDER BY: the row cap (:cap = limit + 1) only detects
-- an expansion over the limit, so any cap + 1 rows will do and the database may stop early.
-- example match_column: c.CONTAINERNAME
SELECT {{ match_column }} AS MATCH_VALUE,
       c.CONTAINERID, c.CONTAINERNAME, c.MFGORDERNAME, c.FIRSTNAME, c.SPECNAME, c.QTY
FROM dwh.DW_MES_CONTAINER c
WHERE c.OBJECTTYPE = 'LOT'
  AND {{ filters }}
FETCH FIRST :cap ROWS ONLY
