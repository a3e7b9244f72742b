"""Migrations: rendered for one server or a cluster, applied once, recorded, idempotent."""

from __future__ import annotations

import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from otel_costs.pricing import Pricer
from otel_costs_collector.pipeline import batch_file
from otel_costs_collector.pipeline.batch_writer import writer
from otel_costs_collector.pipeline.types import Batch
from otel_costs_collector.storage import schema
from otel_costs_collector.storage.client import open_client, parse_storage
from otel_costs_collector.storage.schema import load_migrations, migrate, render

from ..spans import SEMCONV, sdk_request


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
    assert (
        "CREATE TABLE IF NOT EXISTS `costs`.genai_spans ON CLUSTER `prod` AS `costs`.genai_spans_local "
        "ENGINE = Distributed(`prod`, `costs`, genai_spans_local, rand())" in sql
    )
    assert "TO `costs`.genai_costs_hourly_local" in sql and "FROM `costs`.genai_spans_local" in sql
    creates = [s for s in statements if s.startswith("CREATE")]
    assert all("ON CLUSTER `prod`" in s for s in creates)


@pytest.mark.parametrize(
    "version, too_old",
    [
        ("24.10.3.21", True),
        ("23.8.16.40", True),
        ("24.11.1.2557", False),
        ("25.8.3.1", False),
        ("26.9.2.1", False),
        ("head", False),
    ],
)
def test_check_version_names_a_server_too_old_for_the_migrations(version, too_old):
    if too_old:
        with pytest.raises(RuntimeError, match=f"ClickHouse {version} is too old.*24.11 or later"):
            schema.check_version(version)
    else:
        schema.check_version(version)


def test_migrate_is_idempotent_and_recorded(storage, database):
    client = open_client(parse_storage(storage))
    try:
        first = migrate(client, db=database, raw_ttl_days=30)
        second = migrate(client, db=database, raw_ttl_days=30)
        assert first == [f"{m.version:04d}_{m.name}" for m in load_migrations()]
        assert second == []
        recorded = client.query(
            f"SELECT version, name FROM `{database}`.schema_migrations ORDER BY version"
        ).result_rows
        assert recorded == [(m.version, m.name) for m in load_migrations()]
        migrate(client, db=database, raw_ttl_days=12)  # a changed TTL setting is applied
        ddl = client.command(
            f"SELECT create_table_query FROM system.tables WHERE database = '{database}' AND name = 'genai_spans'"
        )
        assert "toIntervalDay(12)" in ddl
        assert "min_bytes_for_wide_part = 268435456" in ddl  # 0008: batches make Compact parts
        assert "merge_selector_base = 10" in ddl  # 0010: fewer rewrites a span
    finally:
        client.close()


def _batch(tenants):
    request = sdk_request([{**SEMCONV, "tenant.id": t, "otel_costs.tag.plan": "pro"} for t in tenants])
    body = request.SerializeToString()
    records = [batch_file.Record(body, None, batch_file.request_token(body, None))]
    return Batch.of(records, len(tenants))


def test_plain_string_columns_keep_rows_stored_before_them(storage, database, monkeypatch):
    """0007 turns the raw table's LowCardinality columns into String over existing rows:
    the same totals by tenant and tag afterwards, and a replayed batch is still dropped."""
    every = load_migrations()
    plain = next(m.version for m in every if m.name == "plain_strings")
    client = open_client(parse_storage(storage))
    try:
        monkeypatch.setattr(schema, "load_migrations", lambda: every[: plain - 1])
        migrate(client, db=database)
        # Columns today's rows have (0013, 0014, 0016, 0019), added ahead so that today's writer can insert.
        client.command(
            f"ALTER TABLE `{database}`.genai_spans ADD COLUMN response_id String, "
            "ADD COLUMN counted_on String, ADD COLUMN suspect_of String, "
            "ADD COLUMN cache_write_1h_tokens UInt64, ADD COLUMN web_searches UInt64, "
            "ADD COLUMN cost_web_search Decimal(38, 18), ADD COLUMN service_tier String, "
            "ADD COLUMN cost_adjustment Decimal(38, 18), ADD COLUMN cost_source String, "
            "ADD COLUMN scope LowCardinality(String), ADD COLUMN service_version LowCardinality(String), "
            "ADD COLUMN environment LowCardinality(String)"
        )
        one = writer(client, database, Pricer())
        first = _batch(["acme", "acme", "globex"])
        one.write(first)
        totals = (
            f"SELECT tenant_id, tags['plan'], count(), sum(cost_total), toTypeName(tenant_id) "
            f"FROM `{database}`.genai_spans GROUP BY ALL ORDER BY tenant_id"
        )
        before = client.query(totals).result_rows
        assert [r[:3] for r in before] == [("acme", "pro", 2), ("globex", "pro", 1)]
        assert before[0][3] > Decimal(0) and before[0][4] == "LowCardinality(String)"

        monkeypatch.setattr(schema, "load_migrations", lambda: every)
        assert migrate(client, db=database) == [f"{m.version:04d}_{m.name}" for m in every[plain - 1 :]]
        after = client.query(totals).result_rows
        assert [r[:4] for r in after] == [r[:4] for r in before] and after[0][4] == "String"
        one = writer(client, database, Pricer())  # insert contexts of the new types
        one.write(first)  # a replay: dropped as before
        one.write(_batch(["globex"]))
        rows = client.query(totals).result_rows
        assert [(r[0], r[2]) for r in rows] == [("acme", 2), ("globex", 2)]
        assert rows[1][3] == 2 * before[1][3]
    finally:
        client.close()


@pytest.mark.parametrize(
    "value, message",
    [
        ("", "must not be empty"),
        ("memory", "in-memory"),
        ("ftp://x", "scheme"),
        ("http:///db", "no host"),
        ("http://h:8123/bad-name", "not a valid name"),
    ],
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


def test_the_sql_mapping_stage_tables_are_dropped(storage, database, monkeypatch):
    """0011: the in-memory stage tables of the retired SQL mapping's writers go."""
    every = load_migrations()
    before = next(m.version for m in every if m.name == "drop_sql_mapping_stages") - 1
    client = open_client(parse_storage(storage))
    try:
        monkeypatch.setattr(schema, "load_migrations", lambda: every[:before])
        migrate(client, db=database)
        for stage in ("batch_stage_1", "batch_stage_2"):  # as 0.1's two writers made them
            client.command(f"CREATE TABLE `{database}`.{stage} (x UInt8) ENGINE = Memory")
        monkeypatch.setattr(schema, "load_migrations", lambda: every)
        migrate(client, db=database)
        tables = client.query(
            "SELECT name FROM system.tables WHERE database = {db:String} ORDER BY name", parameters={"db": database}
        ).result_rows
        assert not [t for (t,) in tables if t.startswith("batch_stage")]
        assert ("genai_spans",) in tables
    finally:
        client.close()


_WRITE_AND_COUNT = """
import sys
from otel_costs.pricing import Pricer
from otel_costs_collector.pipeline.batch_writer import writer
from otel_costs_collector.pipeline.types import Batch
from otel_costs_collector.storage.client import open_client, parse_storage
from otel_costs_collector.storage.schema import migrate

client = open_client(parse_storage(sys.argv[1]))
migrate(client, db="otel_costs")
with open(sys.argv[2], "rb") as f:
    writer(client, "otel_costs", Pricer()).write(Batch(f.read(), sys.argv[3], (), 0))
for table in ("genai_spans", "genai_costs_hourly", "genai_costs_daily"):
    calls = "count()" if table == "genai_spans" else "sum(calls)"
    print(*client.query(f"SELECT {calls}, sum(cost_total) FROM otel_costs.{table}").result_rows[0])
"""


def test_a_batch_replayed_after_the_first_restart_is_stored_once_in_the_rollups_too(tmp_path):
    """The process that applies the migrations writes a batch and stops before it knows; the
    next one replays it. ClickHouse names a view altered by MODIFY QUERY (0009, 0012)
    differently until it is reloaded, so without the reload the rollups took the replay."""
    root = Path(__file__).resolve().parents[3]
    batch = _batch(["acme", "acme", "globex"])
    (tmp_path / "batch").write_bytes(batch.data)
    args = [str(tmp_path / "data"), str(tmp_path / "batch"), batch.insert_token]
    runs = [
        subprocess.run(
            [sys.executable, "-c", _WRITE_AND_COUNT, *args],
            capture_output=True,
            text=True,
            cwd=root,
            timeout=300,
        )
        for _ in range(2)
    ]
    for run in runs:
        assert run.returncode == 0, run.stderr[-3000:]
    first, replayed = ([tuple(line.split()) for line in run.stdout.splitlines()] for run in runs)
    raw = first[0]
    assert raw[0] == "3" and Decimal(raw[1]) > 0
    assert [(int(n), Decimal(c)) for n, c in first] == [(3, Decimal(raw[1]))] * 3
    assert replayed == first
