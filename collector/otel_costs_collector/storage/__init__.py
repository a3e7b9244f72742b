"""ClickHouse: the client (embedded chDB or a server), inserts, the schema and its migrations."""
