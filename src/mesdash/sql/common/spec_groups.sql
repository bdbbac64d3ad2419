(
    -- One row per SPEC: the view lists a spec once per work center, all in one group.
    -- A spec the view does not know sorts last (order 999) through the callers' COALESCE.
    SELECT SPEC, MIN(WORK_CENTER_GROUP) AS WORK_CENTER_GROUP,
           MIN(WORKCENTERSEQUENCE_GROUP) AS WORKCENTERSEQUENCE_GROUP
    FROM dwh.DW_MES_SPEC_WORKCENTER_V
    GROUP BY SPEC
)
