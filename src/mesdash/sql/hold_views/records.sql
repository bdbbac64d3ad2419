-- Hold records of the cached dataset (view engine: DuckDB, table `dataset`) with the derived
-- columns every hold view reads: HOLD_TYPE ({{ quality }} tests the configured quality
-- reasons), RELEASED_AT (the release, when it happened before the :cutoff the dataset
-- describes), HOLD_STATUS, HOLD_HOURS (to the release or to the cutoff), the factory days of
-- hold and release (the 07:30 :shift) and REPEAT_QUALITY (a quality hold of a lot that had
-- an earlier quality hold in the dataset). Holds after the cutoff are not part of the state
-- it describes. Included by the other hold views.
-- example quality: HOLDREASONNAME IN ('a')
(
  SELECT t.*,
         CASE WHEN t.RELEASED_AT IS NULL THEN 'ON_HOLD' ELSE 'RELEASED' END AS HOLD_STATUS,
         (epoch(COALESCE(t.RELEASED_AT, :cutoff)) - epoch(t.HOLDTXNDATE)) / 3600.0 AS HOLD_HOURS,
         CAST(t.HOLDTXNDATE - :shift AS DATE) AS HOLD_DAY,
         CAST(t.RELEASED_AT - :shift AS DATE) AS RELEASE_DAY,
         CASE WHEN t.HOLD_TYPE = 'quality'
                   AND ROW_NUMBER() OVER (PARTITION BY t.CONTAINERID, t.HOLD_TYPE
                                          ORDER BY t.HOLDTXNDATE, t.HISTORYMAINLINEID) > 1
              THEN 1 ELSE 0 END AS REPEAT_QUALITY
  FROM (
    SELECT d.*,
           CASE WHEN {{ quality }} THEN 'quality' ELSE 'non-quality' END AS HOLD_TYPE,
           CASE WHEN d.RELEASETXNDATE < :cutoff THEN d.RELEASETXNDATE END AS RELEASED_AT
    FROM dataset d
    WHERE d.HOLDTXNDATE < :cutoff
  ) t
)
