INSERT INTO {join}
SELECT trace_id, span_id,
       new_cost_input, new_cost_output, new_cost_cache_read, new_cost_cache_write, new_cost_web_search,
       new_cost_adjustment, new_cost_total,
       new_pricing_status, new_pricing_source, new_pricing_model, new_pricing_error, new_priced_by, new_service_tier
FROM {db}.cost_versions
WHERE run_id = {run:String} AND day = {day:Date} AND slice = {slice:UInt32}
