-- Calls one run re-priced, with their old version (kept here) and their new one.
SELECT trace_id, span_id, timestamp, model, tenant_id, copies,
       old_cost_total, old_pricing_status, old_pricing_source,
       new_cost_total, new_pricing_status, new_pricing_source
FROM {db}.cost_versions
WHERE run_id = {run:String}
ORDER BY day, trace_id, span_id
LIMIT {limit:UInt32}
