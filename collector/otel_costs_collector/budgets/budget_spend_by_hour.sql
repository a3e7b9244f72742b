-- One budget's scope's spend per UTC hour from {since}, for its forecast
-- (otel_costs_collector/anomalies/forecast.py). An empty scope field matches every value.
SELECT hour, sum(cost_total)
FROM {db}.genai_costs_hourly
WHERE hour >= {since:DateTime('UTC')} AND hour < {end:DateTime('UTC')}
  AND ({tenant:String} = '' OR tenant_id = {tenant:String})
  AND ({user:String} = '' OR user_id = {user:String})
  AND ({feature:String} = '' OR feature = {feature:String})
GROUP BY hour
