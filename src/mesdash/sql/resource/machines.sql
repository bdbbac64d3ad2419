-- The machine pickers of the equipment reports: every piece of equipment, by name.
{{> resource/equipment }}
ORDER BY r.RESOURCENAME, r.RESOURCEID
