-- Cost anomalies (collector/anomalies): one row when an anomaly is found (delivered = 0) and
-- again once the webhook took it (delivered = 1), so a restart neither loses nor repeats one.
-- doc is the anomaly as GET /v1/anomalies shows it (JSON).
CREATE TABLE IF NOT EXISTS {db}.anomalies{local} {on_cluster}
(
    id            String,
    window_start  DateTime('UTC'),
    kind          LowCardinality(String),   -- total, feature, tenant or model
    scope         String,
    impact_usd    Decimal(38, 18),
    doc           String CODEC(ZSTD(1)),
    delivered     UInt8,
    updated_at    DateTime64(6, 'UTC')
)
ENGINE = {engine:ReplacingMergeTree:anomalies}
ORDER BY id;

{distributed:anomalies}
