-- One scope's calls, tokens and cost per hour and contributor (tenant, user, model, release) in
-- the given hours: an anomaly's window and its baseline's. {scope} is a fixed fragment comparing
-- an allowlisted column with the bound {scope:String}, or 1 for the total.
SELECT hour, tenant_id, user_id, model, service_version, sum(calls), sum(input_tokens) + sum(output_tokens),
       sum(cost_total)
FROM {db}.genai_costs_hourly
WHERE has({hours:Array(DateTime)}, hour) AND {scope}
GROUP BY hour, tenant_id, user_id, model, service_version
