"""Query tool: equipment-period investigation, adjacent lots, lot → equipment, split / merge history."""
