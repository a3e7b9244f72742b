-- A re-price run's days, each in its newest state.
SELECT run_id, day, state, slices, rows, cost_before, cost_after, updated_at
FROM {db}.reprice_days
WHERE run_id = {run:String}
ORDER BY day, updated_at DESC
LIMIT 1 BY day
