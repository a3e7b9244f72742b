-- Spend of one budget's scope since its period started, from the raw spans (periods in
-- time zones whose midnight is not on a UTC hour, like Asia/Kolkata).
SELECT sum(cost_total)
FROM {db}.genai_spans
WHERE timestamp >= {start:DateTime64(9, 'UTC')} AND timestamp < {end:DateTime64(9, 'UTC')} AND pricing_status NOT IN {not_counted}
  AND ({tenant:String} = '' OR tenant_id = {tenant:String})
  AND ({user:String} = '' OR user_id = {user:String})
  AND ({feature:String} = '' OR feature = {feature:String})
