-- One bucket of one UTC day's candidate calls (a bucket: a hash of the call's identity), a row
-- per call. A call stored more than once is one row with its copies counted (the rollups hold
-- each copy); copies that differ (variants > 1) are left alone by reprice/run.py.
SELECT
    trace_id, span_id, any(toUnixTimestamp64Nano(timestamp)) AS at_ns,
    any(tenant_id), any(feature), any(user_id), any(provider),
    any(if(response_model != '', response_model, request_model)) AS model,
    any(service), any(operation), any(service_version), any(environment),
    any(request_model), any(response_model),
    any(input_tokens), any(output_tokens), any(cache_read_tokens), any(cache_write_tokens), any(reasoning_tokens),
    any(cache_write_1h_tokens), any(web_searches),
    any(cost_input), any(cost_output), any(cost_cache_read), any(cost_cache_write), any(cost_web_search),
    any(cost_adjustment), any(cost_total),
    any(pricing_status), any(pricing_source), any(pricing_model), any(pricing_error), any(priced_by), any(service_tier),
    count() AS copies,
    uniqExact(timestamp, tenant_id, feature, user_id, provider, request_model, response_model, service, operation,
              service_version, environment, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens,
              reasoning_tokens, cache_write_1h_tokens, web_searches, cost_total, pricing_status, pricing_source,
              service_tier) AS variants
FROM {db}.genai_spans
WHERE timestamp >= {start:DateTime64(9, 'UTC')} AND timestamp < {end:DateTime64(9, 'UTC')}
  AND has({statuses:Array(String)}, pricing_status) AND cost_source != 'provider'
  AND ({model:String} = '' OR if(response_model != '', response_model, request_model) = {model:String})
  AND cityHash64(trace_id, span_id) % {buckets:UInt32} = {bucket:UInt32}
GROUP BY trace_id, span_id
