-- Releases as a dimension: the resource's service.version and deployment environment
-- (deployment.environment.name, or the older deployment.environment) on every row and in both
-- rollups, so cost can be compared before and after a release and spikes tied to it. Rows
-- stored before have them empty. The rollups' sorting keys take the new columns last (a key
-- may be extended by columns added in the same ALTER); the views' queries are swapped in one
-- step (MODIFY QUERY), so no insert is counted twice or missed.
ALTER TABLE {db}.genai_spans{local} {on_cluster}
    ADD COLUMN IF NOT EXISTS service_version LowCardinality(String),
    ADD COLUMN IF NOT EXISTS environment LowCardinality(String);

ALTER TABLE {db}.genai_spans {on_cluster}
    ADD COLUMN IF NOT EXISTS service_version LowCardinality(String),
    ADD COLUMN IF NOT EXISTS environment LowCardinality(String);

ALTER TABLE {db}.genai_costs_hourly{local} {on_cluster}
    ADD COLUMN IF NOT EXISTS service_version LowCardinality(String),
    ADD COLUMN IF NOT EXISTS environment LowCardinality(String),
    MODIFY ORDER BY (tenant_id, hour, feature, user_id, provider, model, service, operation, service_version, environment);

ALTER TABLE {db}.genai_costs_hourly {on_cluster}
    ADD COLUMN IF NOT EXISTS service_version LowCardinality(String),
    ADD COLUMN IF NOT EXISTS environment LowCardinality(String);

ALTER TABLE {db}.genai_costs_daily{local} {on_cluster}
    ADD COLUMN IF NOT EXISTS service_version LowCardinality(String),
    ADD COLUMN IF NOT EXISTS environment LowCardinality(String),
    MODIFY ORDER BY (day, tenant_id, feature, provider, model, service, operation, service_version, environment);

ALTER TABLE {db}.genai_costs_daily {on_cluster}
    ADD COLUMN IF NOT EXISTS service_version LowCardinality(String),
    ADD COLUMN IF NOT EXISTS environment LowCardinality(String);

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
    service_version,
    environment,
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
GROUP BY hour, tenant_id, feature, user_id, provider, model, service, operation, service_version, environment;

ALTER TABLE {db}.genai_costs_daily_mv {on_cluster} MODIFY QUERY
SELECT
    toDate(hour, 'UTC') AS day,
    tenant_id,
    feature,
    provider,
    model,
    service,
    operation,
    service_version,
    environment,
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
GROUP BY day, tenant_id, feature, provider, model, service, operation, service_version, environment;
