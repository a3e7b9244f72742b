-- Re-price runs, each in its newest state, newest first; only {run} when it is given, only
-- those in {state} when it is given.
SELECT * FROM (
    SELECT run_id, started_at, actor, owner, day_from, day_to, model, only, prices, state, days, rows, kept,
           cost_before, cost_after, note, updated_at
    FROM {db}.reprice_runs
    WHERE {run:String} = '' OR run_id = {run:String}
    ORDER BY run_id, updated_at DESC
    LIMIT 1 BY run_id
)
WHERE {state:String} = '' OR state = {state:String}
ORDER BY started_at DESC
LIMIT {limit:UInt32}
