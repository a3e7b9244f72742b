-- The span → row mapping of collector/mapping.py, run by ClickHouse over a batch file of
-- OTLP requests (collector/otlp_batch.proto). One output row per span: its position
-- (request, resource, scope, span; 1-based), its class and, for class 'row', the
-- genai_spans columns. Classes: 'python' (anything unusual: mapping.py maps it),
-- 'non_genai' (dropped), 'reject' (with message), 'row'.
-- $levels: the spans of read_batch.sql under the columns collector/sql_mapping.py
-- generates from otel_costs.conventions, a subquery a level.
SELECT
    request_no, rs_i, ss_i, sp_i,
    multiIf(python_first, 'python',
            non_genai, 'non_genai',
            length(span.trace_id) != 16 OR length(span.span_id) != 8, 'reject',
            span.start_time_unix_nano = 0, 'reject',
            python_rest, 'python',
            'row') AS class,
    multiIf(class != 'reject', '',
            length(span.trace_id) != 16 OR length(span.span_id) != 8,
            concat('span ', if(span.span_id = '', '?', lower(hex(span.span_id))), ': trace_id must be 16 bytes and span_id 8'),
            concat('span ', lower(hex(span.span_id)), ': start_time_unix_nano is missing')) AS message,
    fromUnixTimestamp64Nano(toInt64(span.start_time_unix_nano), 'UTC') AS timestamp,
    -- UInt64 minus UInt64 is Int64 in ClickHouse: back to UInt64 (the difference is positive).
    toUInt64(if(span.end_time_unix_nano > span.start_time_unix_nano,
                span.end_time_unix_nano - span.start_time_unix_nano, 0)) AS duration_ns,
    lower(hex(span.trace_id)) AS trace_id,
    lower(hex(span.span_id)) AS span_id,
    lower(hex(span.parent_span_id)) AS parent_span_id,
    if(service_name != '', service_name, 'unknown_service') AS service,
    leftUTF8(span.name, 256) AS span_name,
    provider, request_model, response_model, operation,
    toUInt64(input_tokens) AS input_tokens,
    toUInt64(output_tokens) AS output_tokens,
    toUInt64(cache_read_tokens) AS cache_read_tokens,
    toUInt64(cache_write_tokens) AS cache_write_tokens,
    toUInt64(reasoning_tokens) AS reasoning_tokens,
    cost_input, cost_output, cost_cache_read, cost_cache_write, cost_total,
    status AS pricing_status, pricing_source, pricing_model,
    leftUTF8(pricing_error, 500) AS pricing_error,
    'sdk' AS priced_by,
    user_id,
    if(tenant_forced, tenant, tenant_id) AS tenant_id,
    feature, tags,
    multiIf(span.status.code = 1, 'ok', span.status.code = 2, 'error', 'unset') AS status_code,
    leftUTF8(error_type, 500) AS error_type,
    token AS request_token
FROM (
$levels
)
