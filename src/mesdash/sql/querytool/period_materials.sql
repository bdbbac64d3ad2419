-- Materials the machines consumed in [start_ts, end_ts): one row per (machine, part,
-- material lot, lot); code folds the lots into a count, so long ranges can be chunked.
-- {{ equipment_filter }}: on m.EQUIPMENTID.
SELECT m.EQUIPMENTID, MIN(m.EQUIPMENTNAME) AS EQUIPMENTNAME, m.MATERIALPARTNAME,
       m.MATERIALLOTNAME, m.CONTAINERID, SUM(m.QTYCONSUMED) AS QTYCONSUMED,
       MIN(m.TXNDATE) AS FIRST_TXNDATE, MAX(m.TXNDATE) AS LAST_TXNDATE
FROM dwh.DW_MES_LOTMATERIALSHISTORY m
WHERE {{ equipment_filter }} AND m.TXNDATE >= :start_ts AND m.TXNDATE < :end_ts
GROUP BY m.EQUIPMENTID, m.MATERIALPARTNAME, m.MATERIALLOTNAME, m.CONTAINERID
