"""Numbered ``.sql`` migrations, applied once each and recorded in ``schema_migrations``.

The files are templates rendered for a single server (or chDB) or, with a cluster name, for
a ClickHouse cluster (``ON CLUSTER``, Replicated engines, Distributed tables). Their
placeholders follow the one SQL rule (otel_costs_collector/sql.py), and two macros name engines:

* ``{db}`` the database; ``{local}`` the storage-table suffix (``_local`` on a cluster);
* ``{dedup_window}`` the insert-deduplication window setting of the engine family;
* ``{on_cluster}``; ``{raw_ttl_days}`` how long raw spans are kept;
* ``{engine:Kind:table}`` → ``Kind()`` or ``ReplicatedKind('/clickhouse/tables/{shard}/db/table', '{replica}')``;
* ``{distributed:table}`` → nothing, or the Distributed table over ``table_local``.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from importlib import resources
from typing import Any

from otel_costs_collector.sql import fill
from otel_costs_collector.sql import load as sql

__all__ = [
    "MIN_CLICKHOUSE",
    "Migration",
    "load_migrations",
    "render",
    "migrate",
    "applied_versions",
    "check_version",
    "missing_migrations",
]

_log = logging.getLogger("otel_costs.collector")
#: The oldest ClickHouse the migrations run on: 0009 alters a view's query (``MODIFY QUERY``,
#: 24.1) and 0010 sets ``merge_selector_base`` (24.11).
MIN_CLICKHOUSE = (24, 11)
_FILE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_MACRO = re.compile(r"\{(engine|distributed):([A-Za-z_]+)(?::([A-Za-z_]+))?\}")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()[:16]


def load_migrations() -> list[Migration]:
    """The packaged migrations in version order. Raises if numbering has gaps."""
    found = []
    for entry in resources.files(f"{__package__}.migrations").iterdir():
        m = _FILE.match(entry.name)
        if m:
            found.append(Migration(int(m.group(1)), m.group(2), entry.read_text(encoding="utf-8")))
    found.sort(key=lambda mig: mig.version)
    if [mig.version for mig in found] != list(range(1, len(found) + 1)):
        raise RuntimeError(f"migrations must be numbered 0001.. without gaps: {[m.version for m in found]}")
    return found


def render(sql: str, *, db: str, cluster: str | None, raw_ttl_days: int, **values: str) -> list[str]:
    """The statements of one migration for this deployment: its placeholders filled by the one
    SQL rule (otel_costs_collector/sql.py; ``values`` fills any others), then the engine and
    Distributed-table macros expanded."""

    def expand(m: re.Match[str]) -> str:
        if m.group(1) == "engine":
            kind, table = m.group(2), m.group(3)
            if not cluster:
                return f"{kind}()"
            return f"Replicated{kind}('/clickhouse/tables/{{shard}}/{db}/{table}', '{{replica}}')"
        table = m.group(2)
        if not cluster:
            return ""
        return (
            f"CREATE TABLE IF NOT EXISTS `{db}`.{table} ON CLUSTER `{cluster}` AS `{db}`.{table}_local "
            f"ENGINE = Distributed(`{cluster}`, `{db}`, {table}_local, rand());"
        )

    text = "\n".join(line for line in sql.splitlines() if not line.strip().startswith("--"))
    text = fill(
        text,
        db=db,
        local="_local" if cluster else "",
        on_cluster=f"ON CLUSTER `{cluster}`" if cluster else "",
        raw_ttl_days=str(int(raw_ttl_days)),
        dedup_window="replicated_deduplication_window" if cluster else "non_replicated_deduplication_window",
        **values,
    )
    text = _MACRO.sub(expand, text)
    return [s.strip() for s in text.split(";") if s.strip()]


def applied_versions(client: Any, db: str) -> dict[int, str]:
    rows = client.query(sql(__package__, "applied_versions", db=db)).result_rows
    return {int(v): c for v, c in rows}


def missing_migrations(client: Any, db: str) -> list[str] | None:
    """Names of the packaged migrations ``db`` lacks ([] when current), or None when it has
    no otel-costs schema at all. Reads only: creates nothing."""
    exists = client.command(
        "SELECT count() FROM system.tables WHERE database = {db:String} AND name = 'schema_migrations'",
        parameters={"db": db},
    )
    if not int(exists):
        return None
    done = applied_versions(client, db)
    return [f"{m.version:04d}_{m.name}" for m in load_migrations() if m.version not in done]


def check_version(version: str) -> None:
    """Raises RuntimeError when ``version`` (``SELECT version()``, e.g. ``25.8.3.1``) is older
    than :data:`MIN_CLICKHOUSE`, so an old server is named before any migration half-applies.
    A version it cannot read passes (forks and builds name themselves freely)."""
    m = re.match(r"(\d+)\.(\d+)", version)
    if m and (int(m.group(1)), int(m.group(2))) < MIN_CLICKHOUSE:
        raise RuntimeError(
            f"ClickHouse {version} is too old for the schema: {'.'.join(map(str, MIN_CLICKHOUSE))} or later is needed"
        )


def migrate(client: Any, *, db: str, cluster: str | None = None, raw_ttl_days: int = 90) -> list[str]:
    """Apply the migrations not yet recorded; returns their names. Idempotent.

    Also brings the raw table's TTL in line with ``raw_ttl_days`` when it changed.
    Raises RuntimeError for a server older than :data:`MIN_CLICKHOUSE` (before touching
    anything), and on a ClickHouse error (nothing after the failing migration is recorded).
    """
    check_version(str(client.command("SELECT version()")))
    for statement in _render_own("schema_migrations", db, cluster, raw_ttl_days):
        client.command(statement)
    done = applied_versions(client, db)
    applied = []
    altered_views = False
    for mig in load_migrations():
        if mig.version in done:
            if done[mig.version] != mig.checksum:
                _log.warning("migration %04d_%s changed since it was applied; not re-applied", mig.version, mig.name)
            continue
        for statement in render(mig.sql, db=db, cluster=cluster, raw_ttl_days=raw_ttl_days):
            client.command(statement)
            altered_views = altered_views or "MODIFY QUERY" in statement
        client.insert(
            f"`{db}`.schema_migrations",
            [[mig.version, mig.name, mig.checksum]],
            column_names=["version", "name", "checksum"],
        )
        applied.append(f"{mig.version:04d}_{mig.name}")
        _log.info("applied migration %04d_%s", mig.version, mig.name)
    if altered_views:
        _reload_views(client, db, cluster)
    _sync_ttl(client, db, cluster, raw_ttl_days)
    return applied


def _render_own(name: str, db: str, cluster: str | None, raw_ttl_days: int = 0, **values: str) -> list[str]:
    """The statements of this package's ``<name>.sql`` (not a migration), rendered as one."""
    text = resources.files(__package__).joinpath(f"{name}.sql").read_text(encoding="utf-8")
    return render(text, db=db, cluster=cluster, raw_ttl_days=raw_ttl_days, **values)


def _reload_views(client: Any, db: str, cluster: str | None) -> None:
    """Detach and attach the materialized views, as a restart would load them.

    Why: after ``ALTER TABLE … MODIFY QUERY`` the running ClickHouse (26.x) names the view by
    its UUID in the deduplication tokens of the blocks it writes, and by ``db.name`` once the
    view is loaded from disk. A batch inserted before the next restart and replayed after it
    (the in-flight batch of a killed collector, an insert retried across a server restart) then
    passes the raw table's deduplication but not the rollups': its cost was counted twice there.
    Between the two statements an insert by another writer would skip the view, so this runs
    only in the process that applied such a migration (a fresh install or an upgrade).
    """
    views = client.query(
        "SELECT name FROM system.tables WHERE database = {db:String} AND engine = 'MaterializedView' ORDER BY name",
        parameters={"db": db},
    ).result_rows
    for (name,) in views:
        for statement in _render_own("reload_view", db, cluster, view=f"`{name}`"):
            client.command(statement)


def _sync_ttl(client: Any, db: str, cluster: str | None, days: int) -> None:
    create = client.command(
        "SELECT create_table_query FROM system.tables WHERE database = {db:String} AND name = {table:String}",
        parameters={"db": db, "table": "genai_spans_local" if cluster else "genai_spans"},
    )
    ddl = str(create)
    # ClickHouse stores the TTL normalised as toIntervalDay(N).
    if f"toIntervalDay({int(days)})" in ddl or f"INTERVAL {int(days)} DAY" in ddl:
        return
    # Not materialised now: rewriting every part would stall the collector; expired
    # parts are dropped as merges and the TTL scheduler reach them.
    for statement in _render_own("raw_ttl", db, cluster, days):
        client.command(statement, settings={"materialize_ttl_after_modify": 0})
    _log.info("raw span TTL set to %d days", days)
