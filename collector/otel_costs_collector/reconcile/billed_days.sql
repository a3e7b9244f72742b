-- Per provider, UTC day, model and project: what the newest pull of that day says was billed, and
-- when that pull ran ({start} … {end} exclusive; the marker row gives pulled days with no lines).
SELECT p.provider, p.day, p.model, p.project, sum(p.amount_usd) AS billed, any(latest.at) AS pulled_at
FROM {db}.provider_costs AS p
INNER JOIN
(
    SELECT provider, day, argMax(pull_id, (pulled_at, pull_id)) AS id, max(pulled_at) AS at
    FROM {db}.provider_costs
    WHERE day >= {start:Date} AND day < {end:Date}
    GROUP BY provider, day
) AS latest ON p.provider = latest.provider AND p.day = latest.day AND p.pull_id = latest.id
WHERE p.day >= {start:Date} AND p.day < {end:Date}
GROUP BY p.provider, p.day, p.model, p.project
