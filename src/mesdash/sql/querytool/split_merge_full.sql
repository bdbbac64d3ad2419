-- Split / merge history of one lot, full mode: every split and combine transaction that
-- names the lot, with no date window and no row cap. A full scan of DW_MES_HM_LOTMOVEOUT
-- (49M rows, no CONTAINERID index): only ever run inside a background job, streamed.
SELECT m.TXNDATE, m.CDONAME, m.CALLBYCDONAME, m.CONTAINERID, m.CONTAINERNAME,
       m.FROMCONTAINERID, m.FROMCONTAINERNAME, m.QTY, m.HISTORYMAINLINEID
FROM dwh.DW_MES_HM_LOTMOVEOUT m
WHERE m.CDONAME IN (:cdo_split, :cdo_combine)
  AND (m.CONTAINERID = :container_id OR m.FROMCONTAINERID = :container_id)
ORDER BY m.TXNDATE DESC, m.HISTORYMAINLINEID
