-- Daily hold trend per hold type over the cached dataset (view engine: DuckDB). `days` is a
-- registered table of the range's factory days (DAY, from :first_day) that began before the
-- dataset's cutoff. On hand: held and not released by the end of the day (the last day ends
-- at the cutoff); new and future holds by their hold day; released by the release day;
-- repeated quality holds: new quality holds of a lot already held for quality.
-- example quality: HOLDREASONNAME IN ('a')
WITH recs AS (
  SELECT * FROM {{> hold_views/records }} r
),
types AS (
  SELECT 'quality' AS HOLD_TYPE UNION ALL SELECT 'non-quality'
),
deltas AS (
  -- on hand at the end of a day = holds held by then − holds released by then: a running
  -- sum of +1 at the hold day (carried-in holds at the first day) and −1 at the release day
  SELECT CASE WHEN HOLD_DAY < :first_day THEN :first_day ELSE HOLD_DAY END AS DAY, HOLD_TYPE,
         1 AS D_COUNT, COALESCE(QTY, 0) AS D_QTY
  FROM recs
  UNION ALL
  SELECT RELEASE_DAY, HOLD_TYPE, -1, -COALESCE(QTY, 0) FROM recs WHERE RELEASED_AT IS NOT NULL
),
daily AS (
  SELECT DAY, HOLD_TYPE, SUM(D_COUNT) AS D_COUNT, SUM(D_QTY) AS D_QTY
  FROM deltas
  GROUP BY DAY, HOLD_TYPE
),
on_hand AS (
  SELECT d.DAY, t.HOLD_TYPE,
         SUM(COALESCE(x.D_COUNT, 0)) OVER (PARTITION BY t.HOLD_TYPE ORDER BY d.DAY
                                           ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS ON_HAND_COUNT,
         SUM(COALESCE(x.D_QTY, 0)) OVER (PARTITION BY t.HOLD_TYPE ORDER BY d.DAY
                                         ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS ON_HAND_QTY
  FROM days d
  CROSS JOIN types t
  LEFT JOIN daily x ON x.DAY = d.DAY AND x.HOLD_TYPE = t.HOLD_TYPE
),
news AS (
  SELECT HOLD_DAY AS DAY, HOLD_TYPE, COUNT(*) AS NEW_COUNT, SUM(COALESCE(QTY, 0)) AS NEW_QTY,
         SUM(CASE WHEN FUTUREHOLDCOMMENTS IS NOT NULL THEN 1 ELSE 0 END) AS FUTURE_COUNT,
         SUM(REPEAT_QUALITY) AS REPEAT_QUALITY_COUNT
  FROM recs
  GROUP BY HOLD_DAY, HOLD_TYPE
),
releases AS (
  SELECT RELEASE_DAY AS DAY, HOLD_TYPE, COUNT(*) AS RELEASED_COUNT,
         SUM(COALESCE(QTY, 0)) AS RELEASED_QTY
  FROM recs
  WHERE RELEASED_AT IS NOT NULL
  GROUP BY RELEASE_DAY, HOLD_TYPE
)
SELECT d.DAY, t.HOLD_TYPE,
       COALESCE(o.ON_HAND_COUNT, 0) AS ON_HAND_COUNT, COALESCE(o.ON_HAND_QTY, 0) AS ON_HAND_QTY,
       COALESCE(n.NEW_COUNT, 0) AS NEW_COUNT, COALESCE(n.NEW_QTY, 0) AS NEW_QTY,
       COALESCE(n.FUTURE_COUNT, 0) AS FUTURE_COUNT,
       COALESCE(n.REPEAT_QUALITY_COUNT, 0) AS REPEAT_QUALITY_COUNT,
       COALESCE(x.RELEASED_COUNT, 0) AS RELEASED_COUNT, COALESCE(x.RELEASED_QTY, 0) AS RELEASED_QTY
FROM days d
CROSS JOIN types t
LEFT JOIN on_hand o ON o.DAY = d.DAY AND o.HOLD_TYPE = t.HOLD_TYPE
LEFT JOIN news n ON n.DAY = d.DAY AND n.HOLD_TYPE = t.HOLD_TYPE
LEFT JOIN releases x ON x.DAY = d.DAY AND x.HOLD_TYPE = t.HOLD_TYPE
ORDER BY d.DAY, t.HOLD_TYPE
