-- What a report's reader should know beyond its rows: calls stored below another call that
-- also carries a cost, which the counting rules could not pair (otel_costs_collector/mapping/calls.py sets
-- suspect_of), so they may be counted twice. Same range and filters as the report.
SELECT count(), any(trace_id)
FROM {db}.genai_spans
WHERE timestamp >= {start:DateTime64(9, 'UTC')} AND timestamp < {end:DateTime64(9, 'UTC')} AND suspect_of != '' {filters}
