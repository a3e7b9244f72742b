-- What one re-priced UTC day changes in the hourly rollup, per rollup key: new minus old, for
-- every copy of each call (the hourly view counts unpriced calls as those not 'priced' or
-- 'overridden': migrations/0019_releases.sql). Sorted so a repeated insert forms the same
-- blocks, and ClickHouse drops it by its deduplication token.
SELECT
    toStartOfHour(timestamp) AS hour,
    tenant_id, feature, user_id, provider, model, service, operation, service_version, environment,
    sum(toInt64(copies) * (toInt64(new_pricing_status NOT IN ('priced', 'overridden'))
                           - toInt64(old_pricing_status NOT IN ('priced', 'overridden')))) AS unpriced_calls,
    sum(copies * (new_cost_input - old_cost_input)) AS cost_input,
    sum(copies * (new_cost_output - old_cost_output)) AS cost_output,
    sum(copies * (new_cost_cache_read - old_cost_cache_read)) AS cost_cache_read,
    sum(copies * (new_cost_cache_write - old_cost_cache_write)) AS cost_cache_write,
    sum(copies * (new_cost_web_search - old_cost_web_search)) AS cost_web_search,
    sum(copies * (new_cost_adjustment - old_cost_adjustment)) AS cost_adjustment,
    sum(copies * (new_cost_total - old_cost_total)) AS cost_total
FROM {db}.cost_versions
WHERE run_id = {run:String} AND day = {day:Date}
GROUP BY hour, tenant_id, feature, user_id, provider, model, service, operation, service_version, environment
ORDER BY hour, tenant_id, feature, user_id, provider, model, service, operation, service_version, environment
LIMIT {page:UInt32} OFFSET {offset:UInt64}
