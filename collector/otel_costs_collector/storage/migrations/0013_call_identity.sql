-- One cost per provider call across requests (collector/calls.py): the response id that
-- identifies a call when two instrumentations trace it side by side, the span that carries
-- the cost of a counted_elsewhere row, and the span that already carries a cost above a
-- costed row the rules could not pair (a suspected double count, shown by the reports).
ALTER TABLE {db}.genai_spans{local} {on_cluster}
    ADD COLUMN IF NOT EXISTS response_id String CODEC(ZSTD(1)),
    ADD COLUMN IF NOT EXISTS counted_on String CODEC(ZSTD(1)),
    ADD COLUMN IF NOT EXISTS suspect_of String CODEC(ZSTD(1));

ALTER TABLE {db}.genai_spans {on_cluster}
    ADD COLUMN IF NOT EXISTS response_id String CODEC(ZSTD(1)),
    ADD COLUMN IF NOT EXISTS counted_on String CODEC(ZSTD(1)),
    ADD COLUMN IF NOT EXISTS suspect_of String CODEC(ZSTD(1));

-- Rows for another span's call (counted_elsewhere) are stored for context, like aggregates,
-- and never summed.
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
WHERE pricing_status NOT IN ('aggregate', 'counted_elsewhere')
GROUP BY hour, tenant_id, feature, user_id, provider, model, service, operation;
