-- Backward genealogy of the seeds, Oracle: split parents (DW_MES_CONTAINER.SPLITFROMID)
-- and merge sources (DW_MES_PJ_COMBINEDASSYLOTS: source CONTAINERID -> finished LOTID)
-- together, so a merge source's own split ancestors and their merges are followed too.
-- The walk is connect_by_walk.oracle.sql, shared with descendants.oracle.sql; the engine
-- fills its direction slots (near = TO_ID, far = FROM_ID: from each edge's child end to its
-- parent end).
{{> lineage/connect_by_walk }}
