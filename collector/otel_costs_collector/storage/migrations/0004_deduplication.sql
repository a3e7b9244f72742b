-- Idempotent writes. Every batch is inserted with a deterministic
-- insert_deduplication_token (a hash of its span ids), so a batch retried after a
-- timeout, or replayed, is stored once. Plain MergeTree keeps no insert hashes unless
-- this window is set; the rollup tables need it too, so that blocks the materialized
-- views write are deduplicated as well (with deduplicate_blocks_in_dependent_materialized_views).
ALTER TABLE {db}.genai_spans{local} {on_cluster} MODIFY SETTING {dedup_window} = 10000;
ALTER TABLE {db}.genai_costs_hourly{local} {on_cluster} MODIFY SETTING {dedup_window} = 10000;
ALTER TABLE {db}.genai_costs_daily{local} {on_cluster} MODIFY SETTING {dedup_window} = 10000;
