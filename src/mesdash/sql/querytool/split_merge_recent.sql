-- Split / merge history of one lot, fast mode: DW_MES_HM_LOTMOVEOUT has 49M rows and no
-- CONTAINERID index, so this read is bounded by a TXNDATE window (the last 6 months by
-- default) and a row cap; the unbounded read is split_merge_full.sql, run as a job.
-- Split and combine transactions name the lot as CONTAINERID (the lot created or moved)
-- or FROMCONTAINERID (the lot it came from).
SELECT m.TXNDATE, m.CDONAME, m.CALLBYCDONAME, m.CONTAINERID, m.CONTAINERNAME,
       m.FROMCONTAINERID, m.FROMCONTAINERNAME, m.QTY, m.HISTORYMAINLINEID
FROM dwh.DW_MES_HM_LOTMOVEOUT m
WHERE m.TXNDATE >= :since AND m.TXNDATE < :until
  AND m.CDONAME IN (:cdo_split, :cdo_combine)
  AND (m.CONTAINERID = :container_id OR m.FROMCONTAINERID = :container_id)
ORDER BY m.TXNDATE DESC, m.HISTORYMAINLINEID
FETCH FIRST :max_rows ROWS ONLY
