"""Migrations: rendered for one server or a cluster, applied once, recorded, idempotent."""

from __future__ import annotations

import pytest

from collector.schema import load_migrations, migrate, render
from collector.storage import open_client, parse_storage


def test_migrations_are_numbered_files():
    migrations = load_migrations()
    assert [m.version for m in migrations] == list(range(1, len(migrations) + 1))
    assert {m.name for m in migrations} >= {"genai_spans", "hourly_rollups"}


def test_single_server_rendering():
    sql = "\n".join(s for m in load_migrations() for s in render(m.sql, db="costs", cluster=None, raw_ttl_days=30))
    assert "ENGINE = MergeTree()" in sql and "ENGINE = SummingMergeTree()" in sql
    assert "ON CLUSTER" not in sql and "Distributed" not in sql and "_local" not in sql
    assert "INTERVAL 30 DAY" in sql and "{" not in sql


def test_cluster_rendering():
    statements = [s for m in load_migrations() for s in render(m.sql, db="costs", cluster="prod", raw_ttl_days=7)]
    sql = "\n".join(statements)
    assert "ReplicatedMergeTree('/clickhouse/tables/{shard}/costs/genai_spans', '{replica}')" in sql
    assert "ReplicatedSummingMergeTree('/clickhouse/tables/{shard}/costs/genai_costs_hourly', '{replica}')" in sql
    assert "CREATE TABLE IF NOT EXISTS `costs`.genai_spans ON CLUSTER `prod` AS `costs`.genai_spans_local " \
           "ENGINE = Distributed(`prod`, `costs`, genai_spans_local, rand())" in sql
    assert "TO `costs`.genai_costs_hourly_local" in sql and "FROM `costs`.genai_spans_local" in sql
    creates = [s for s in statements if s.startswith("CREATE")]
    assert all("ON CLUSTER `prod`" in s for s in creates)


def test_migrate_is_idempotent_and_recorded(storage, database):
    client = open_client(parse_storage(storage))
    try:
        first = migrate(client, db=database, raw_ttl_days=30)
        second = migrate(client, db=database, raw_ttl_days=30)
        assert first == [f"{m.version:04d}_{m.name}" for m in load_migrations()]
        assert second == []
        recorded = client.query(f"SELECT version, name FROM `{database}`.schema_migrations ORDER BY version").result_rows
        assert recorded == [(m.version, m.name) for m in load_migrations()]
        migrate(client, db=database, raw_ttl_days=12)  # a changed TTL setting is applied
        ddl = client.command(f"SELECT create_table_query FROM system.tables WHERE database = '{database}' AND name = 'genai_spans'")
        assert "toIntervalDay(12)" in ddl
    finally:
        client.close()


@pytest.mark.parametrize(
    "value, message",
    [("", "must not be empty"), ("memory", "in-memory"), ("ftp://x", "scheme"), ("http:///db", "no host"),
     ("http://h:8123/bad-name", "not a valid name")],
)
def test_bad_storage_values(value, message):
    with pytest.raises(ValueError, match=message):
        parse_storage(value)


def test_storage_forms(tmp_path):
    assert parse_storage(str(tmp_path)).kind == "chdb"
    assert parse_storage(f"chdb://{tmp_path}").location == str(tmp_path)
    target = parse_storage("https://user:secret@ch.example:8443/costs")
    assert (target.kind, target.database) == ("http", "costs")
    assert "secret" not in target.describe()
