-- The daily rollups are summed from the hourly rollups' inserts instead of from the raw
-- spans: the same sums (a day is whole UTC hours; the hourly keys include every daily
-- key), over a few hundred hourly rows an insert instead of every span. Aggregating each
-- batch of ~25k spans a second time was ~25 ms of the ~95 ms its insert into genai_spans
-- took. The chained view is deduplicated with the others on a replayed batch
-- (deduplicate_blocks_in_dependent_materialized_views). MODIFY QUERY swaps the view's
-- source in one step, so no insert is counted twice or missed while it runs (ClickHouse
-- 24.1 or later: before, it needed allow_experimental_alter_materialized_view_structure).
ALTER TABLE {db}.genai_costs_daily_mv {on_cluster} MODIFY QUERY
SELECT
    toDate(hour, 'UTC') AS day,
    tenant_id,
    feature,
    provider,
    model,
    service,
    operation,
    sum(calls) AS calls,
    sum(error_calls) AS error_calls,
    sum(unpriced_calls) AS unpriced_calls,
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
FROM {db}.genai_costs_hourly{local}
GROUP BY day, tenant_id, feature, provider, model, service, operation;
