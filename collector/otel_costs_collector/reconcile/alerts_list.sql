-- Capture-rate alerts of days from {since}: the newest state per provider and day.
SELECT provider, day, argMax(delivered, updated_at), argMax(billed_usd, updated_at), argMax(tracked_usd, updated_at)
FROM {db}.reconcile_alerts
WHERE day >= {since:Date}
GROUP BY provider, day
