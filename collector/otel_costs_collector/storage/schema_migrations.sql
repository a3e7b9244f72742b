-- The database and the record of applied migrations, made before any migration runs.
CREATE DATABASE IF NOT EXISTS {db} {on_cluster};
CREATE TABLE IF NOT EXISTS {db}.schema_migrations {on_cluster}
(
    version    UInt32,
    name       String,
    checksum   String,
    applied_at DateTime('UTC') DEFAULT now()
)
ENGINE = {engine:MergeTree:schema_migrations}
ORDER BY version;
