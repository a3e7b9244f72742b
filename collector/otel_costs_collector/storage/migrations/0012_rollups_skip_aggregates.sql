-- Aggregates (agent, workflow and SDK outer spans: their usage is the sum of the calls
-- below them, which are counted on their own spans) are stored for context but never
-- summed: the hourly rollup, and through it the daily one, leaves them out, as do the raw
-- reports (queries/costs_raw.sql, budget_spend_raw.sql). MODIFY QUERY swaps the view's
-- query in one step (ClickHouse 24.1 or later).
ALTER TABLE {db}.genai_costs_hourly_mv {on_cluster} MODIFY QUERY
SELECT
    toStartOfHour(timestamp) AS hour,
    tenant_id,
    feature,
    user_id,
    provider,
    if(response_model != '', response_model, request_model) AS model,
    service,
    operation,
    count() AS calls,
    countIf(status_code = 'error') AS error_calls,
    countIf(pricing_status NOT IN ('priced', 'overridden')) AS unpriced_calls,
    sum(input_tokens) AS input_tokens,
    sum(output_tokens) AS output_tokens,
    sum(cache_read_tokens) AS cache_read_tokens,
    sum(cache_write_tokens) AS cache_write_tokens,
    sum(reasoning_tokens) AS reasoning_tokens,
    sum(cost_input) AS cost_input,
    sum(cost_output) AS cost_output,
    sum(cost_cache_read) AS cost_cache_read,
    sum(cost_cache_write) AS cost_cache_write,
    sum(cost_total) AS cost_total
FROM {db}.genai_spans{local}
WHERE pricing_status != 'aggregate'
GROUP BY hour, tenant_id, feature, user_id, provider, model, service, operation;
