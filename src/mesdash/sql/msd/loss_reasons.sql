-- Loss reasons recorded at a station group (:station), with how often: the reason filter's
-- choices. The reason policy is not applied here; the analysis applies it.
SELECT r.LOSSREASONNAME, COUNT(*) AS ROW_COUNT
FROM dwh.DW_MES_LOTREJECTHISTORY r
JOIN {{> common/spec_groups }} w ON w.SPEC = r.SPECNAME
WHERE w.WORK_CENTER_GROUP = :station AND r.LOSSREASONNAME IS NOT NULL
GROUP BY r.LOSSREASONNAME
ORDER BY r.LOSSREASONNAME
