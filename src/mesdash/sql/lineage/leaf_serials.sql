-- Finished-goods serials (FINISHEDNAME) of the leaves of a forward genealogy: a leaf is
-- either a finished lot itself (LOTID) or a source whose finished lot has no container row.
SELECT m.LOTID AS NODE_ID, m.FINISHEDNAME
FROM dwh.DW_MES_PJ_COMBINEDASSYLOTS m
WHERE m.FINISHEDNAME IS NOT NULL
  AND {{ lot_filter }}
UNION
SELECT m.CONTAINERID, m.FINISHEDNAME
FROM dwh.DW_MES_PJ_COMBINEDASSYLOTS m
WHERE m.FINISHEDNAME IS NOT NULL
  AND {{ source_filter }}
