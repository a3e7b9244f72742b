-- What one run changed, per UTC day, model and tenant: calls and cost before and after (the
-- staged versions of the days it applied).
SELECT v.day AS day, model, tenant_id, sum(copies) AS calls,
       sum(copies * old_cost_total) AS cost_before, sum(copies * new_cost_total) AS cost_after
FROM {db}.cost_versions AS v
WHERE run_id = {run:String}
GROUP BY day, model, tenant_id
ORDER BY day, model, tenant_id
LIMIT {limit:UInt32}
