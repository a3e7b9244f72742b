-- Exactly once across client retries. Each row carries the token of the OTLP request it
-- came in (a hash of that request's span ids) and when it was stored. A collector keeps
-- the tokens of recently stored requests, reloading them from here after a restart, so
-- an exporter retrying a request whose answer was lost (a crash between the insert and
-- the answer) is answered "stored" instead of being counted again.
ALTER TABLE {db}.genai_spans{local} {on_cluster}
    ADD COLUMN IF NOT EXISTS request_token String DEFAULT '' CODEC(ZSTD(1)),
    ADD COLUMN IF NOT EXISTS ingested_at DateTime('UTC') DEFAULT now() CODEC(Delta, ZSTD(1));

ALTER TABLE {db}.genai_spans {on_cluster}
    ADD COLUMN IF NOT EXISTS request_token String DEFAULT '' CODEC(ZSTD(1)),
    ADD COLUMN IF NOT EXISTS ingested_at DateTime('UTC') DEFAULT now() CODEC(Delta, ZSTD(1));

ALTER TABLE {db}.genai_spans{local} {on_cluster}
    ADD INDEX IF NOT EXISTS ingested_at_minmax ingested_at TYPE minmax GRANULARITY 1;
