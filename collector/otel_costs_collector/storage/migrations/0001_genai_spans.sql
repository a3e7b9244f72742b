-- Raw GenAI spans, one row per call. Partitioned by day so the TTL drops whole parts;
-- ordered by tenant then time for per-tenant time-range queries.
CREATE TABLE IF NOT EXISTS {db}.genai_spans{local} {on_cluster}
(
    timestamp          DateTime64(9, 'UTC') CODEC(Delta, ZSTD(1)),
    duration_ns        UInt64 CODEC(T64, ZSTD(1)),
    trace_id           String CODEC(ZSTD(1)),
    span_id            String CODEC(ZSTD(1)),
    parent_span_id     String CODEC(ZSTD(1)),
    service            LowCardinality(String),
    span_name          LowCardinality(String),
    provider           LowCardinality(String),
    request_model      LowCardinality(String),
    response_model     LowCardinality(String),
    operation          LowCardinality(String),
    input_tokens       UInt64,
    output_tokens      UInt64,
    cache_read_tokens  UInt64,
    cache_write_tokens UInt64,
    reasoning_tokens   UInt64,
    cost_input         Decimal(38, 18),
    cost_output        Decimal(38, 18),
    cost_cache_read    Decimal(38, 18),
    cost_cache_write   Decimal(38, 18),
    cost_total         Decimal(38, 18),
    pricing_status     LowCardinality(String),
    pricing_source     LowCardinality(String),
    pricing_model      LowCardinality(String),
    pricing_error      String CODEC(ZSTD(1)),
    priced_by          LowCardinality(String),
    user_id            String CODEC(ZSTD(1)),
    tenant_id          LowCardinality(String),
    feature            LowCardinality(String),
    tags               Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    status_code        LowCardinality(String),
    error_type         String CODEC(ZSTD(1))
)
ENGINE = {engine:MergeTree:genai_spans}
PARTITION BY toDate(timestamp)
ORDER BY (tenant_id, timestamp, span_id)
TTL toDateTime(timestamp) + INTERVAL {raw_ttl_days} DAY
SETTINGS ttl_only_drop_parts = 1;

{distributed:genai_spans}
