-- Spend of one budget's scope since its period started, from the hourly rollups (periods
-- that start on a UTC hour). An empty scope field matches every value.
SELECT sum(cost_total)
FROM {db}.genai_costs_hourly
WHERE hour >= {start:DateTime('UTC')} AND hour < {end:DateTime('UTC')}
  AND ({tenant:String} = '' OR tenant_id = {tenant:String})
  AND ({user:String} = '' OR user_id = {user:String})
  AND ({feature:String} = '' OR feature = {feature:String})
