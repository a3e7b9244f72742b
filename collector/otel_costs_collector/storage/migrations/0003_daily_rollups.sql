-- Daily cost rollups without the user: the small table most reports and dashboards read
-- (cost by feature, tenant or model per day over months). Filled by a materialized view
-- on every insert into genai_spans; no TTL. Read it with sum() ... GROUP BY.
CREATE TABLE IF NOT EXISTS {db}.genai_costs_daily{local} {on_cluster}
(
    day                Date,
    tenant_id          LowCardinality(String),
    feature            LowCardinality(String),
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
ENGINE = {engine:SummingMergeTree:genai_costs_daily}
PARTITION BY toYYYYMM(day)
ORDER BY (day, tenant_id, feature, provider, model, service, operation);

{distributed:genai_costs_daily}

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.genai_costs_daily_mv {on_cluster}
TO {db}.genai_costs_daily{local}
AS SELECT
    toDate(timestamp, 'UTC') AS day,
    tenant_id,
    feature,
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
GROUP BY day, tenant_id, feature, provider, model, service, operation;
