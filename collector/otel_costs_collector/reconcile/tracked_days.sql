-- Per provider, UTC day, stored model name, service and tenant: the costs counted, and those
-- with a tenant (the service and tenant say which project's key the calls used).
SELECT provider, day, model, service, tenant_id, sum(cost_total) AS tracked, sumIf(cost_total, tenant_id != '') AS attributed
FROM {db}.genai_costs_daily
WHERE day >= {start:Date} AND day < {end:Date} AND provider IN {providers:Array(String)}
GROUP BY provider, day, model, service, tenant_id
