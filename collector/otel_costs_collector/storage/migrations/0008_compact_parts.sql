-- Raw-table parts stay Compact (one data file) up to 256 MiB uncompressed instead of
-- 10 MiB. An insert of ~25k spans is ~10 MiB, so at the 10 MiB default every batch and
-- every merge created a Wide part: two files a column, ~80 files a part. Creating that
-- many files (ext4 inode allocation) took ~12% of the embedded collector's CPU
-- (perf, at ~35k spans/s); with Compact parts it sustained 47-49k spans/s against
-- 37-43k, 33-37 µs of collector CPU a span against 38-48 (bench/collector_ingest.py,
-- side by side). Parts merged past 256 MiB become Wide as before, for column reads.
ALTER TABLE {db}.genai_spans{local} {on_cluster} MODIFY SETTING min_bytes_for_wide_part = 268435456;
