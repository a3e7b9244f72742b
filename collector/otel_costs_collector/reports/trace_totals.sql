-- One trace's counted calls in total: what an agent run cost, step by step summed.
SELECT count() AS calls, sum(cost_total) AS cost_usd, sum(input_tokens), sum(output_tokens),
       countIf(pricing_status NOT IN ('priced', 'overridden')) AS unpriced_calls,
       countIf(status_code = 'error') AS error_calls,
       toUnixTimestamp64Nano(min(timestamp)) AS first_ns,
       max(toUnixTimestamp64Nano(timestamp) + duration_ns) AS last_end_ns
FROM {db}.genai_spans
WHERE trace_id = {trace_id:String} AND pricing_status NOT IN {not_counted} {filters}
