-- How long raw spans are kept (OTEL_COSTS_RAW_TTL_DAYS); the rollups are kept.
ALTER TABLE {db}.genai_spans{local} {on_cluster} MODIFY TTL toDateTime(timestamp) + INTERVAL {raw_ttl_days} DAY
