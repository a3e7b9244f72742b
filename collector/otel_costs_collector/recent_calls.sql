-- The calls stored in the last minutes, for otel_costs_collector.mapping.calls after a restart: an outer span
-- or a second instrumentation's span of the same call that arrives later still pairs with them.
SELECT trace_id, span_id, parent_span_id, toUnixTimestamp64Nano(timestamp) AS start_ns,
       start_ns + duration_ns AS end_ns, input_tokens, cache_read_tokens, cache_write_tokens,
       output_tokens, pricing_status, response_id, user_id, tenant_id, feature, request_token,
       service, provider, scope
FROM {db}.genai_spans
WHERE ingested_at >= now() - toIntervalSecond({window:UInt32})
ORDER BY end_ns
LIMIT {limit:UInt32}
