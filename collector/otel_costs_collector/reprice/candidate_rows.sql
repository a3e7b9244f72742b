-- One slice of one UTC day's candidate calls: a slice is a hash bucket of the call's identity,
-- so every copy of a call is in the same slice. Copies of a row (a call stored twice) are
-- counted, not listed: the rollups hold each.
SELECT
    trace_id, span_id, toUnixTimestamp64Nano(timestamp) AS at_ns,
    tenant_id, feature, user_id, provider,
    if(response_model != '', response_model, request_model) AS model,
    service, operation, service_version, environment,
    request_model, response_model,
    input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, reasoning_tokens,
    cache_write_1h_tokens, web_searches,
    cost_input, cost_output, cost_cache_read, cost_cache_write, cost_web_search, cost_adjustment, cost_total,
    pricing_status, pricing_source, pricing_model, pricing_error, priced_by, service_tier,
    count() AS copies
FROM {db}.genai_spans
WHERE timestamp >= {start:DateTime64(9, 'UTC')} AND timestamp < {end:DateTime64(9, 'UTC')}
  AND has({statuses:Array(String)}, pricing_status) AND cost_source != 'provider'
  AND ({model:String} = '' OR if(response_model != '', response_model, request_model) = {model:String})
  AND cityHash64(trace_id, span_id) % {slices:UInt32} = {slice:UInt32}
GROUP BY ALL
ORDER BY trace_id, span_id
