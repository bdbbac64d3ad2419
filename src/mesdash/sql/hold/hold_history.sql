-- Hold-history dataset: one row per hold created in [start_ts, end_ts) — plus, in the first
-- chunk of a plan only (:carry_in = 1), the holds created earlier and still on hold at
-- start_ts, so on-hand quantities are right from the first day and a decomposed plan holds
-- every hold exactly once. Release columns are NULL while the lot is still on hold.
SELECT h.HISTORYMAINLINEID, h.CONTAINERID, c.CONTAINERNAME, h.PJ_WORKORDER,
       c.PRODUCTLINENAME, h.WORKCENTERNAME, h.HOLDTXNDATE, h.RELEASETXNDATE, h.HOLDEMP,
       h.HOLDEMPDEPTNAME, h.HOLDREASONID, h.HOLDREASONNAME, h.HOLDCOMMENTS, h.RELEASEEMP,
       h.RELEASECOMMENTS, h.NCRID, h.FUTUREHOLDCOMMENTS, h.QTY
FROM dwh.DW_MES_HOLDRELEASEHISTORY h
LEFT JOIN dwh.DW_MES_CONTAINER c ON c.CONTAINERID = h.CONTAINERID
WHERE (h.HOLDTXNDATE >= :start_ts AND h.HOLDTXNDATE < :end_ts)
   OR (:carry_in = 1 AND h.HOLDTXNDATE < :start_ts
       AND (h.RELEASETXNDATE IS NULL OR h.RELEASETXNDATE >= :start_ts))
