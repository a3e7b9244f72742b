-- Request tokens stored in the last `window` seconds: a request resent after a restart is
-- recognised as stored.
SELECT DISTINCT request_token FROM {db}.genai_spans
WHERE ingested_at >= now() - toIntervalSecond({window:UInt32}) AND request_token != ''
