-- Cost report from raw spans: for tags, time ranges that are not whole UTC hours, and
-- time zones whose days do not start on a UTC hour. Same columns as costs_hourly.sql and costs_daily.sql.
SELECT
    {dims}
    count() AS calls,
    sum(cost_total) AS cost_usd,
    sum(input_tokens) AS input_tokens,
    sum(output_tokens) AS output_tokens,
    sum(cache_read_tokens) AS cache_read_tokens,
    sum(cache_write_tokens) AS cache_write_tokens,
    countIf(pricing_status NOT IN ('priced', 'overridden')) AS unpriced_calls,
    sum(web_searches) AS web_searches,
    sum(cost_web_search) AS web_search_usd,
    sum(cost_adjustment) AS adjustment_usd,
    countIf(status_code = 'error') AS error_calls
FROM {db}.genai_spans
WHERE timestamp >= {start:DateTime64(9, 'UTC')} AND timestamp < {end:DateTime64(9, 'UTC')} AND pricing_status NOT IN {not_counted} {filters}
{group_by}
ORDER BY cost_usd DESC, calls DESC
{limit}
