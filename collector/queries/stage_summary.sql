-- What became of each request of the batch just mapped into the stage table
-- (collector/batch_writer.py): its spans, how many are stored rows, dropped as not GenAI,
-- rejected (with messages), and the positions of the spans Python maps.
SELECT
    request_no,
    count() AS received,
    countIf(class = 'row') AS stored,
    countIf(class = 'non_genai') AS non_genai,
    groupArrayIf(message, class = 'reject') AS errors,
    groupArrayIf((rs_i, ss_i, sp_i), class = 'python') AS python
FROM $stage
GROUP BY request_no
ORDER BY request_no
