-- Alerts fired in periods starting at or after {since}: newest state per key.
SELECT budget_id, period_start, threshold, argMax(delivered, updated_at) AS a_delivered,
       argMax(spend_usd, updated_at) AS a_spend, argMax(amount_usd, updated_at) AS a_amount
FROM {db}.budget_alerts
WHERE period_start >= {since:DateTime('UTC')}
GROUP BY budget_id, period_start, threshold
