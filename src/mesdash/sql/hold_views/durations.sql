-- Hold durations of the selected records (view engine: DuckDB) in four buckets
-- (< 4 h, 4–24 h, 1–3 d, > 3 d), for released holds and holds still on hold at the
-- dataset's cutoff, with count, quantity, average and maximum hours per bucket.
-- example quality: HOLDREASONNAME IN ('a')
SELECT HOLD_STATUS,
       CASE WHEN HOLD_HOURS < 4 THEN '<4h' WHEN HOLD_HOURS < 24 THEN '4-24h'
            WHEN HOLD_HOURS < 72 THEN '1-3d' ELSE '>3d' END AS BUCKET,
       COUNT(*) AS HOLDS, SUM(COALESCE(QTY, 0)) AS QTY,
       AVG(HOLD_HOURS) AS AVG_HOURS, MAX(HOLD_HOURS) AS MAX_HOURS
FROM {{> hold_views/records }} r
WHERE {{ filters }}
GROUP BY HOLD_STATUS,
         CASE WHEN HOLD_HOURS < 4 THEN '<4h' WHEN HOLD_HOURS < 24 THEN '4-24h'
              WHEN HOLD_HOURS < 72 THEN '1-3d' ELSE '>3d' END
