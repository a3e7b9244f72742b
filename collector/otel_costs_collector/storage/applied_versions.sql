-- The migrations recorded as applied, with their checksums.
SELECT version, any(checksum) FROM {db}.schema_migrations GROUP BY version
