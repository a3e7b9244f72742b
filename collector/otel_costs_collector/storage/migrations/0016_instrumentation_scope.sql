-- The instrumentation scope that made each span (OTLP scope.name: "com.anthropic.sdk.python",
-- "openinference.instrumentation.anthropic", ...). The one-cost-per-call rule pairs two spans
-- of one call that two instrumentations made side by side (otel_costs.counting.decide), and
-- never two spans of one instrumentation; a restart reloads it with the recent calls.
ALTER TABLE {db}.genai_spans{local} {on_cluster}
    ADD COLUMN IF NOT EXISTS scope LowCardinality(String);

ALTER TABLE {db}.genai_spans {on_cluster}
    ADD COLUMN IF NOT EXISTS scope LowCardinality(String);
