-- Lot history (LOTWIPHISTORY) with the lot's type, package and wafer lot, and the
-- station group of the spec. {{ cid_filter }}: CONTAINERID IN-lists on h.CONTAINERID.
{{> events/history_columns }}
FROM dwh.DW_MES_LOTWIPHISTORY h
JOIN dwh.DW_MES_CONTAINER c ON c.CONTAINERID = h.CONTAINERID
LEFT JOIN {{> common/spec_groups }} w ON w.SPEC = h.SPECNAME
WHERE {{ cid_filter }}
ORDER BY h.CONTAINERID, h.MOVEINTIMESTAMP, h.TRACKINTIMESTAMP
