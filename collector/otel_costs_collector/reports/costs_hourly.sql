-- Cost report from the hourly rollups. {dims}, {group_by} and {filters} are filled from
-- a fixed allowlist of SQL fragments; every user value is a bound {name:Type} parameter.
SELECT
    {dims}
    sum(calls) AS calls,
    sum(cost_total) AS cost_usd,
    sum(input_tokens) AS input_tokens,
    sum(output_tokens) AS output_tokens,
    sum(cache_read_tokens) AS cache_read_tokens,
    sum(cache_write_tokens) AS cache_write_tokens,
    sum(unpriced_calls) AS unpriced_calls,
    sum(web_searches) AS web_searches,
    sum(cost_web_search) AS web_search_usd,
    sum(cost_adjustment) AS adjustment_usd,
    sum(error_calls) AS error_calls
FROM {db}.genai_costs_hourly
WHERE hour >= {start:DateTime('UTC')} AND hour < {end:DateTime('UTC')} {filters}
{group_by}
ORDER BY cost_usd DESC, calls DESC
{limit}
