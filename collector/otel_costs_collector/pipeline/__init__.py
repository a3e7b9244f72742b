"""The write pipeline: batching, retries, the spool and write-ahead copies, around a plain write of a batch."""
