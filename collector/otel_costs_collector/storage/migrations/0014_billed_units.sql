-- Prices as billed: the service tier the provider served (its price variant: flex, priority,
-- batch, ...), one-hour cache writes (a part of cache_write_tokens, at their own price) and
-- web searches with their cost part; and the provider's own billed cost where it reports one
-- (cost_source 'provider': cost_total is the bill, the parts our list-price estimate, and
-- cost_adjustment the difference). cost_total = the parts + cost_web_search + cost_adjustment.
-- The rollups sum the new counts and costs, so every report's total stays the sum of its parts.
ALTER TABLE {db}.genai_spans{local} {on_cluster}
    ADD COLUMN IF NOT EXISTS cache_write_1h_tokens UInt64,
    ADD COLUMN IF NOT EXISTS web_searches UInt64,
    ADD COLUMN IF NOT EXISTS cost_web_search Decimal(38, 18),
    ADD COLUMN IF NOT EXISTS cost_adjustment Decimal(38, 18),
    ADD COLUMN IF NOT EXISTS service_tier String CODEC(ZSTD(1)),
    ADD COLUMN IF NOT EXISTS cost_source String DEFAULT 'local' CODEC(ZSTD(1));

ALTER TABLE {db}.genai_spans {on_cluster}
    ADD COLUMN IF NOT EXISTS cache_write_1h_tokens UInt64,
    ADD COLUMN IF NOT EXISTS web_searches UInt64,
    ADD COLUMN IF NOT EXISTS cost_web_search Decimal(38, 18),
    ADD COLUMN IF NOT EXISTS cost_adjustment Decimal(38, 18),
    ADD COLUMN IF NOT EXISTS service_tier String CODEC(ZSTD(1)),
    ADD COLUMN IF NOT EXISTS cost_source String DEFAULT 'local' CODEC(ZSTD(1));

ALTER TABLE {db}.genai_costs_hourly{local} {on_cluster}
    ADD COLUMN IF NOT EXISTS web_searches UInt64,
    ADD COLUMN IF NOT EXISTS cost_web_search Decimal(38, 18),
    ADD COLUMN IF NOT EXISTS cost_adjustment Decimal(38, 18);

ALTER TABLE {db}.genai_costs_hourly {on_cluster}
    ADD COLUMN IF NOT EXISTS web_searches UInt64,
    ADD COLUMN IF NOT EXISTS cost_web_search Decimal(38, 18),
    ADD COLUMN IF NOT EXISTS cost_adjustment Decimal(38, 18);

ALTER TABLE {db}.genai_costs_daily{local} {on_cluster}
    ADD COLUMN IF NOT EXISTS web_searches UInt64,
    ADD COLUMN IF NOT EXISTS cost_web_search Decimal(38, 18),
    ADD COLUMN IF NOT EXISTS cost_adjustment Decimal(38, 18);

ALTER TABLE {db}.genai_costs_daily {on_cluster}
    ADD COLUMN IF NOT EXISTS web_searches UInt64,
    ADD COLUMN IF NOT EXISTS cost_web_search Decimal(38, 18),
    ADD COLUMN IF NOT EXISTS cost_adjustment Decimal(38, 18);

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
    sum(web_searches) AS web_searches,
    sum(cost_input) AS cost_input,
    sum(cost_output) AS cost_output,
    sum(cost_cache_read) AS cost_cache_read,
    sum(cost_cache_write) AS cost_cache_write,
    sum(cost_web_search) AS cost_web_search,
    sum(cost_adjustment) AS cost_adjustment,
    sum(cost_total) AS cost_total
FROM {db}.genai_spans{local}
WHERE pricing_status NOT IN ('aggregate', 'counted_elsewhere')
GROUP BY hour, tenant_id, feature, user_id, provider, model, service, operation;

ALTER TABLE {db}.genai_costs_daily_mv {on_cluster} MODIFY QUERY
SELECT
    toDate(hour, 'UTC') AS day,
    tenant_id,
    feature,
    provider,
    model,
    service,
    operation,
    sum(calls) AS calls,
    sum(error_calls) AS error_calls,
    sum(unpriced_calls) AS unpriced_calls,
    sum(input_tokens) AS input_tokens,
    sum(output_tokens) AS output_tokens,
    sum(cache_read_tokens) AS cache_read_tokens,
    sum(cache_write_tokens) AS cache_write_tokens,
    sum(reasoning_tokens) AS reasoning_tokens,
    sum(web_searches) AS web_searches,
    sum(cost_input) AS cost_input,
    sum(cost_output) AS cost_output,
    sum(cost_cache_read) AS cost_cache_read,
    sum(cost_cache_write) AS cost_cache_write,
    sum(cost_web_search) AS cost_web_search,
    sum(cost_adjustment) AS cost_adjustment,
    sum(cost_total) AS cost_total
FROM {db}.genai_costs_hourly{local}
GROUP BY day, tenant_id, feature, provider, model, service, operation;
