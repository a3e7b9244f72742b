-- The raw table's LowCardinality(String) columns become plain String (the rollups keep
-- theirs). With ~14 of them, ClickHouse spent more CPU converting rows to dictionaries on
-- insert and re-keying dictionaries on every merge than on the rest of the row: merging
-- ten 24k-row parts took 5.5 µs a row against 2.2 µs with plain strings, and the embedded
-- collector sustained 30k spans/s against 37-38k (bench/collector_ingest.py, side by
-- side). Raw rows are read by time range and tenant; reports read the rollups.
-- On existing data ClickHouse rewrites these columns in the background (a mutation);
-- reads are correct meanwhile.
ALTER TABLE {db}.genai_spans{local} {on_cluster}
    MODIFY COLUMN service String, MODIFY COLUMN span_name String, MODIFY COLUMN provider String,
    MODIFY COLUMN request_model String, MODIFY COLUMN response_model String, MODIFY COLUMN operation String,
    MODIFY COLUMN pricing_status String, MODIFY COLUMN pricing_source String, MODIFY COLUMN pricing_model String,
    MODIFY COLUMN priced_by String, MODIFY COLUMN tenant_id String, MODIFY COLUMN feature String,
    MODIFY COLUMN status_code String, MODIFY COLUMN tags Map(String, String) CODEC(ZSTD(1));

-- The Distributed table on a cluster (the same table again on a single server: no change).
ALTER TABLE {db}.genai_spans {on_cluster}
    MODIFY COLUMN service String, MODIFY COLUMN span_name String, MODIFY COLUMN provider String,
    MODIFY COLUMN request_model String, MODIFY COLUMN response_model String, MODIFY COLUMN operation String,
    MODIFY COLUMN pricing_status String, MODIFY COLUMN pricing_source String, MODIFY COLUMN pricing_model String,
    MODIFY COLUMN priced_by String, MODIFY COLUMN tenant_id String, MODIFY COLUMN feature String,
    MODIFY COLUMN status_code String, MODIFY COLUMN tags Map(String, String) CODEC(ZSTD(1));
