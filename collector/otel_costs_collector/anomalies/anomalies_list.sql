-- The anomalies recorded since {since}: the newest row per id (recorded, then delivered).
SELECT id, argMax(doc, updated_at), argMax(delivered, updated_at), argMax(window_start, updated_at)
FROM {db}.anomalies
WHERE window_start >= {since:DateTime}
GROUP BY id
ORDER BY argMax(window_start, updated_at) DESC, id
