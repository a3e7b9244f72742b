-- Individual calls (each counted call once: not aggregates, not a second instrumentation's
-- span of a call counted elsewhere), newest first, after the keyset {cursor} when paging.
-- {filters}, {where}, {cursor} and {order} are filled from a fixed allowlist of SQL fragments; every
-- user value is a bound {name:Type} parameter.
SELECT
    toUnixTimestamp64Nano(timestamp) AS ts_ns, trace_id, span_id, service, provider, request_model,
    response_model, operation, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens,
    reasoning_tokens, cache_write_1h_tokens, web_searches, cost_input, cost_output, cost_cache_read,
    cost_cache_write, cost_web_search, cost_adjustment, cost_total, pricing_status, pricing_source,
    pricing_error, cost_source, service_tier, status_code, error_type, duration_ns, user_id, tenant_id,
    feature, tags, service_version, environment
FROM {db}.genai_spans
WHERE timestamp >= {start:DateTime64(9, 'UTC')} AND timestamp < {end:DateTime64(9, 'UTC')}
  AND pricing_status NOT IN {not_counted} {filters} {where} {cursor}
ORDER BY {order}, trace_id DESC, span_id DESC
LIMIT {limit:UInt32}
