-- Raw-table merges wait for about ten parts of a size instead of five (merge_selector_base),
-- so each span is rewritten by fewer merges: with ~25k-span inserts, 1.5 instead of 2.4
-- rows merged per row inserted, and ~32-35 against ~26-30 µs of CPU a span for the whole
-- write including its merges (three runs of 24-80 batches, in one process, side by side).
-- The raw table is written all the time and read seldom (reports read the rollups), so
-- a few more parts between merges are the better trade. Needs ClickHouse 24.11 or later.
ALTER TABLE {db}.genai_spans{local} {on_cluster} MODIFY SETTING merge_selector_base = 10;
