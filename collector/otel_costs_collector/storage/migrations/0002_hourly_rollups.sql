-- Hourly cost rollups by tenant, feature, user, provider and model (plus service and
-- operation), filled by a materialized view on every insert into genai_spans. No TTL:
-- aggregates outlive the raw rows. Rows of one key are summed on merge, so readers
-- always aggregate with sum() ... GROUP BY.
CREATE TABLE IF NOT EXISTS {db}.genai_costs_hourly{local} {on_cluster}
(
    hour               DateTime('UTC'),
    tenant_id          LowCardinality(String),
    feature            LowCardinality(String),
    user_id            String,
    provider           LowCardinality(String),
    model              LowCardinality(String),
    service            LowCardinality(String),
    operation          LowCardinality(String),
    calls              UInt64,
    error_calls        UInt64,
    unpriced_calls     UInt64,
    input_tokens       UInt64,
    output_tokens      UInt64,
    cache_read_tokens  UInt64,
    cache_write_tokens UInt64,
    reasoning_tokens   UInt64,
    cost_input         Decimal(38, 18),
    cost_output        Decimal(38, 18),
    cost_cache_read    Decimal(38, 18),
    cost_cache_write   Decimal(38, 18),
    cost_total         Decimal(38, 18)
)
ENGINE = {engine:SummingMergeTree:genai_costs_hourly}
PARTITION BY toYYYYMM(hour)
ORDER BY (tenant_id, hour, feature, user_id, provider, model, service, operation);

{distributed:genai_costs_hourly}

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.genai_costs_hourly_mv {on_cluster}
TO {db}.genai_costs_hourly{local}
AS SELECT
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
GROUP BY hour, tenant_id, feature, user_id, provider, model, service, operation;
