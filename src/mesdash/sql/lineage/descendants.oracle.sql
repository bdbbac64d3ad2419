-- Forward genealogy of the seeds, Oracle: split children (rows whose SPLITFROMID is the
-- node) and the finished lots they were merged into (COMBINEDASSYLOTS: CONTAINERID -> LOTID).
-- The walk is connect_by_walk.oracle.sql, shared with genealogy.oracle.sql; the engine
-- fills its direction slots (near = FROM_ID, far = TO_ID: from each edge's parent end to
-- its child end).
{{> lineage/connect_by_walk }}
