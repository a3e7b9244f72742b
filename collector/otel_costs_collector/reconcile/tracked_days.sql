-- Per provider, UTC day and stored model name: the costs counted, and those with a tenant.
SELECT provider, day, model, sum(cost_total) AS tracked, sumIf(cost_total, tenant_id != '') AS attributed
FROM {db}.genai_costs_daily
WHERE day >= {start:Date} AND day < {end:Date} AND provider IN {providers:Array(String)}
GROUP BY provider, day, model
