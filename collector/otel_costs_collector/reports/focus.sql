-- The counted calls of a range per UTC day, provider, model, service, tenant, user, feature and
-- how they were priced: the rows of the FOCUS export (reports/focus.py), streamed in day order.
SELECT
    toDate(timestamp, 'UTC') AS day,
    provider,
    if(response_model != '', response_model, request_model) AS model,
    service, tenant_id, user_id, feature, priced_by, cost_source, pricing_source,
    count(), sum(input_tokens), sum(output_tokens), sum(cache_read_tokens), sum(cache_write_tokens),
    sum(web_searches), sum(cost_input), sum(cost_output), sum(cost_cache_read), sum(cost_cache_write),
    sum(cost_web_search), sum(cost_adjustment), sum(cost_total)
FROM {db}.genai_spans
WHERE timestamp >= {start:DateTime64(9, 'UTC')} AND timestamp < {end:DateTime64(9, 'UTC')}
  AND pricing_status NOT IN {not_counted}
GROUP BY day, provider, model, service, tenant_id, user_id, feature, priced_by, cost_source, pricing_source
ORDER BY day, provider, model, service, tenant_id, user_id, feature, priced_by, cost_source, pricing_source
