-- Machines for the picker: equipment only (OBJECTCATEGORY ASSEMBLY or WAFERSORT), by name.
-- {{ filters }}: an optional name / work-center search (LIKE, escaped, bound).
-- example filters: 1 = 1
SELECT r.RESOURCEID, r.RESOURCENAME, r.WORKCENTERNAME, r.RESOURCEFAMILYNAME, r.OBJECTCATEGORY
FROM dwh.DW_MES_RESOURCE r
WHERE r.OBJECTCATEGORY IN ('ASSEMBLY', 'WAFERSORT') AND {{ filters }}
ORDER BY r.RESOURCENAME, r.RESOURCEID
FETCH FIRST :max_rows ROWS ONLY
