-- The UTC days re-priced in a range, with the runs that applied them (newest first per day).
SELECT d.day AS day, d.run_id AS run_id, r.actor AS actor, r.started_at AS started_at, r.prices AS prices,
       d.rows AS rows, d.cost_before AS cost_before, d.cost_after AS cost_after
FROM (
    SELECT run_id, day, state, rows, cost_before, cost_after
    FROM {db}.reprice_days
    WHERE day >= {start:Date} AND day < {end:Date}
    ORDER BY run_id, day, updated_at DESC
    LIMIT 1 BY run_id, day
) AS d
INNER JOIN (
    SELECT run_id, actor, started_at, prices FROM {db}.reprice_runs ORDER BY run_id, updated_at DESC LIMIT 1 BY run_id
) AS r ON r.run_id = d.run_id
WHERE d.state = 'applied'
ORDER BY day, started_at DESC
LIMIT 1000
