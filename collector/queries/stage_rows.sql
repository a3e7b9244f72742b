-- The stage table's stored rows into genai_spans (collector/batch_writer.py). One block
-- (single thread), so the batch's deduplication token stands for the same block on replay.
INSERT INTO $db.genai_spans ($columns)
$settings
SELECT $columns FROM $stage WHERE class = 'row'
