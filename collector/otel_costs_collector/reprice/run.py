"""A re-price run: the stored calls of whole UTC days priced again with the price table as it is
now, day by day.

Per day: its candidate calls are read in buckets (by a hash of the call's identity, about
:data:`BUCKET_ROWS` each, a query each, so memory stays bounded on any number of calls), priced
(reprice/prices.py) and the changed ones staged in ``cost_versions`` (old and new version), in
slices of at most :data:`SLICE_ROWS` (each bucket in one);
then the day is applied: the hourly rollup (and through its view the daily one) takes the
difference per key, in inserts ClickHouse deduplicates by token, and the raw rows are set to
their new version (an idempotent ``ALTER TABLE … UPDATE`` per slice, waited for). The journal
(reprice/journal.py) marks each step, so :func:`recover` — run at every collector start and
before every run — rolls back a day that was only staged and finishes one that was being
applied: per day, old or new, never a mix, never a rollup counted twice.

Rows stored while a day runs are not in its slices and keep the price they were stored with.
Storage I/O on the caller's thread; one run at a time per :class:`Repricer`.
"""

from __future__ import annotations

import itertools
import logging
import math
import os
import re
import secrets
import signal
import threading
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, Callable

from otel_costs.pricing import Pricer
from otel_costs_collector.reprice.journal import DayEntry, RunEntry, history, owner, run_days, stale_runs
from otel_costs_collector.reprice.plan import EXACT, RepriceRequest, Summary
from otel_costs_collector.reprice.prices import STATUSES, Kept, Stored, Version, reprice
from otel_costs_collector.sql import load
from otel_costs_collector.storage.insert import INSERT_SETTINGS

__all__ = ["BUCKET_ROWS", "FAILPOINT_ENV", "SLICE_ROWS", "Busy", "Repricer", "prices_label", "recover"]

_log = logging.getLogger("otel_costs.collector")
#: The most candidate calls one slice holds (ClickHouse keeps a slice's new versions in memory
#: while its raw rows are updated).
SLICE_ROWS = 500_000
#: About how many candidate calls one read takes (ClickHouse groups a bucket's calls in memory).
BUCKET_ROWS = 20_000
#: Rollup differences inserted per insert.
_CHUNK = 20_000
#: Tests only: ``staging``, ``staged``, ``rollups`` or ``rows`` — the process kills itself
#: (SIGKILL) after that step (staging: a bucket's staged insert) of the first day it reaches.
FAILPOINT_ENV = "OTEL_COSTS_FAILPOINT_REPRICE"
_STAGE_COLUMNS = (
    "run_id day slice trace_id span_id timestamp copies tenant_id feature user_id provider model service "
    "operation service_version environment"
).split()
_VERSION_COLUMNS = (
    "cost_input cost_output cost_cache_read cost_cache_write cost_web_search cost_adjustment cost_total "
    "pricing_status pricing_source pricing_model pricing_error priced_by service_tier"
).split()
_ALL_STAGE = _STAGE_COLUMNS + [f"old_{c}" for c in _VERSION_COLUMNS] + [f"new_{c}" for c in _VERSION_COLUMNS]
_DELTA_COLUMNS = (
    "hour tenant_id feature user_id provider model service operation service_version environment unpriced_calls "
    "cost_input cost_output cost_cache_read cost_cache_write cost_web_search cost_adjustment cost_total"
).split()
_RUN_ID = re.compile(r"^[0-9a-f]{20}$")
_MUTATION = {"mutations_sync": 2, "allow_nondeterministic_mutations": 1}


class Busy(Exception):
    """Another re-price is running."""


def prices_label(pricer: Pricer) -> str:
    """The price table a pricer uses: genai-prices' version, and the overrides' hash."""
    overrides = pricer.overrides
    return pricer.source + (f", overrides {overrides.version}" if overrides is not None else "")


class Repricer:
    """Runs re-prices on ``client()``'s storage, one at a time (thread-safe: a second caller
    gets :class:`Busy`). ``prices_file``: the overrides file, read again at each run.
    ``owns``: ``client()`` opens a connection of the run's own, closed after it (a collector's
    queries then never wait behind a re-price's updates)."""

    def __init__(
        self, client: Callable[[], Any], db: str, prices_file: str | None, live_prices: str = "", owns: bool = False
    ):
        self._client, self._db, self._prices_file, self._live = client, db, prices_file, live_prices
        self._owns = owns
        self._lock = threading.Lock()
        self._failpoint = os.environ.get(FAILPOINT_ENV, "")

    def run(self, request: RepriceRequest, progress: Callable[[str], None] | None = None) -> dict[str, Any]:
        """Plan (``request.dry_run``) or apply; the result as the API shows it. Raises Busy,
        PriceOverridesError (the overrides file does not load: nothing done), or what storage raises."""
        if not self._lock.acquire(blocking=False):
            raise Busy("a re-price is running; wait for it to finish")
        try:
            pricer = Pricer(self._prices_file)
            client = self._client()
            try:
                recovered = recover(client, self._db)
                running = history(client, self._db, limit=1, state="running")
                if running:  # another process's, alive (two runs of a day would correct its rollups twice)
                    raise Busy(f"re-price {running[0].run_id} is running ({running[0].owner}); wait for it to finish")
                return self._run(client, pricer, request, progress or (lambda _: None), recovered)
            finally:
                if self._owns:
                    client.close()
        finally:
            self._lock.release()

    def _run(
        self, client: Any, pricer: Pricer, request: RepriceRequest, progress: Callable[[str], None], recovered: list
    ) -> dict[str, Any]:
        label = prices_label(pricer)
        days = _candidate_days(client, self._db, request)
        summary = Summary()
        run: RunEntry | None = None
        if not request.dry_run:
            run = RunEntry(
                _new_run_id(), datetime.now(timezone.utc), request.actor, owner(), request.day_from,
                request.day_to, request.model, request.only, label,
            )  # fmt: skip
            run.write(client, self._db)
        try:
            for i, (day, calls) in enumerate(days, 1):
                slices = max(1, math.ceil(calls / SLICE_ROWS))
                buckets = max(1, math.ceil(calls / BUCKET_ROWS))
                entry = DayEntry(run.run_id, day, "staging", slices) if run else None
                before_rows, before, after = summary.rows, summary.before, summary.after
                for b in range(buckets):
                    _bucket(client, self._db, request, pricer, day, buckets, b, summary, entry, self._fail)
                    if b % 10 == 9 or b == buckets - 1:
                        where = f"{day} ({i}/{len(days)} days, {(b + 1) / buckets:.0%})"
                        kept = sum(summary.kept.values())
                        progress(f"{where}: {summary.rows:,} calls to re-price, {kept:,} kept")
                if run is None or entry is None or summary.rows == before_rows:
                    continue
                entry.rows = summary.rows - before_rows
                entry.cost_before, entry.cost_after = (
                    EXACT.subtract(summary.before, before),
                    EXACT.subtract(summary.after, after),
                )
                entry.write(client, self._db, "staged")
                self._fail("staged")
                apply_day(client, self._db, entry, self._fail)
                run.days, run.rows = run.days + 1, run.rows + entry.rows
                run.cost_before = EXACT.add(run.cost_before, entry.cost_before)
                run.cost_after = EXACT.add(run.cost_after, entry.cost_after)
                run.write(client, self._db)  # also the run's heartbeat
        except BaseException as exc:
            if run is not None:
                _log.error("re-price %s stopped: %s; finishing or rolling back its days", run.run_id, exc)
                try:
                    recover(client, self._db, only=run.run_id, note=f"stopped: {exc}")
                except Exception as again:  # storage down: the next start or run does it
                    _log.error("re-price %s left for the next start: %s", run.run_id, again)
            raise
        if run is not None:
            run.kept = sum(summary.kept.values())
            run.state = "done"
            run.write(client, self._db)
        doc: dict[str, Any] = {
            "run": run.run_id if run else None,
            **request.doc(),
            "prices": label,
            **summary.doc(),
            "recovered": [r.run_id for r in recovered],
        }
        if self._live and self._live != label:
            doc["note"] = (
                f"re-priced with {label}; the collector prices new calls with {self._live} until it is restarted"
            )
        return doc

    def _fail(self, step: str) -> None:
        if self._failpoint == step:
            _log.error("failpoint %s=%s: killing this process", FAILPOINT_ENV, step)
            os.kill(os.getpid(), signal.SIGKILL)


def apply_day(client: Any, db: str, entry: DayEntry, fail: Callable[[str], None] = lambda _: None) -> None:
    """Apply a staged day: rollup differences, then the raw rows; journalled. Idempotent."""
    entry.write(client, db, "applying")
    start = datetime.combine(entry.day, datetime.min.time())
    end = start + timedelta(days=1)
    params = {"run": entry.run_id, "day": entry.day}
    settings = dict(INSERT_SETTINGS)
    text = load(__package__, "rollup_deltas", db=db)
    for n in itertools.count():  # pages of a total order: the same pages, and tokens, when repeated
        rows = [
            list(r) for r in client.query(text, parameters={**params, "page": _CHUNK, "offset": n * _CHUNK}).result_rows
        ]
        for row in rows:
            row[10] &= (1 << 64) - 1  # a fall in unpriced calls, as UInt64 sums it (mod 2**64)
        if rows:
            _insert_deltas(client, db, rows, f"reprice-{entry.run_id}-{entry.day}-{n}", settings)
        if len(rows) < _CHUNK:
            break
    fail("rollups")
    for s in range(entry.slices):
        name = f"reprice_join_{entry.run_id}_{entry.day:%Y%m%d}_{s}"
        table = f"`{db}`.{name}"
        client.command(f"DROP TABLE IF EXISTS {table} SYNC")
        client.command(load(__package__, "create_join", join=table))
        client.command(load(__package__, "fill_join", db=db, join=table), parameters={**params, "slice": s})
        client.command(
            load(__package__, "update_rows", db=db),
            parameters={**params, "slice": s, "join": f"{db}.{name}", "start": start, "end": end},
            settings=_MUTATION,
        )
        client.command(f"DROP TABLE IF EXISTS {table} SYNC")
    fail("rows")
    entry.write(client, db, "applied")


def recover(client: Any, db: str, only: str = "", note: str = "") -> list[RunEntry]:
    """Finish or roll back what runs whose process is gone left (``only``: that run, whatever
    its owner): a day staged is rolled back (its staged versions deleted), a day being applied
    is applied again. Returns the runs recovered, now ``interrupted``."""
    # (This process's own runs count as gone: one that is running holds the Repricer's lock.)
    runs = [r for r in stale_runs(client, db) if not only or r.run_id == only]
    for run in runs:
        # An update the killed run left unfinished is redone below, from its staged versions.
        client.command(load(__package__, "kill_mutations"), parameters={"db": db, "run": run.run_id})
        applied = rolled_back = 0
        run.days, run.rows, run.cost_before, run.cost_after = 0, 0, Decimal(0), Decimal(0)
        for entry in run_days(client, db, run.run_id):
            if entry.state in ("staging", "staged"):
                client.command(
                    load(__package__, "delete_staged", db=db), parameters={"run": run.run_id, "day": entry.day}
                )
                entry.write(client, db, "rolled_back")
            elif entry.state == "applying":
                apply_day(client, db, entry)
            if entry.state == "applied":
                applied += 1
                run.days, run.rows = run.days + 1, run.rows + entry.rows
                run.cost_before = EXACT.add(run.cost_before, entry.cost_before)
                run.cost_after = EXACT.add(run.cost_after, entry.cost_after)
            elif entry.state == "rolled_back":
                rolled_back += 1
        run.state = "interrupted"
        run.note = (
            f"{note + '; ' if note else ''}interrupted: {applied} day(s) applied, {rolled_back} rolled back; "
            "run it again to re-price the rest"
        )
        run.write(client, db)
        _log.warning("re-price %s recovered: %s", run.run_id, run.note)
    return runs


def _candidate_days(client: Any, db: str, request: RepriceRequest) -> list[tuple[date, int]]:
    start, end = request.bounds()
    result = client.query(load(__package__, "candidate_days", db=db), parameters=_filter(request, start, end))
    return [(row[0], int(row[1])) for row in result.result_rows]


def _filter(request: RepriceRequest, start: datetime, end: datetime) -> dict[str, Any]:
    return {"start": start, "end": end, "statuses": list(STATUSES[request.only]), "model": request.model}


def _bucket(
    client: Any,
    db: str,
    request: RepriceRequest,
    pricer: Pricer,
    day: date,
    buckets: int,
    b: int,
    summary: Summary,
    entry: DayEntry | None,
    fail: Callable[[str], None],
) -> None:
    """Price one bucket of one day into ``summary``; stage its changes when ``entry`` is given,
    in slice ``b % entry.slices``."""
    start = datetime.combine(day, datetime.min.time())
    params = {**_filter(request, start, start + timedelta(days=1)), "buckets": buckets, "bucket": b}
    rows = client.query(load(__package__, "candidate_rows", db=db), parameters=params).result_rows
    staged: list[list[Any]] = []
    for row in rows:
        copies = int(row[34])
        if row[35] > 1:  # the call's copies say different things: which one to price is unknown
            summary.keep("copies differ", copies)
            continue
        version = Version(tuple(row[21:28]), row[28], row[29], row[30], row[31], row[32], row[33])
        stored = Stored(row[2], row[6], row[12], row[13], row[9], *row[14:21], version)  # type: ignore[call-arg]
        new = reprice(pricer, stored)
        if isinstance(new, Kept):
            summary.keep(new.reason, copies)
            continue
        summary.add(day, row[7], row[3], copies, version.costs[-1], new.costs[-1])
        if entry is not None:
            identity = [entry.run_id, day, b % entry.slices, row[0], row[1], row[2], copies, *row[3:12]]
            staged.append([*identity, *version.costs, *version[1:], *new.costs, *new[1:]])
    if staged:
        assert entry is not None
        if not entry.journalled:  # before its first staged call: a crash now is rolled back
            entry.write(client, db, "staging")
        client.insert(f"`{db}`.cost_versions", staged, column_names=_ALL_STAGE)
        fail("staging")


def _insert_deltas(client: Any, db: str, rows: list[list[Any]], token: str, settings: dict[str, Any]) -> None:
    client.insert(
        f"`{db}`.genai_costs_hourly",
        rows,
        column_names=_DELTA_COLUMNS,
        settings={**settings, "insert_deduplication_token": token},
    )


def _new_run_id() -> str:
    run_id = datetime.now(timezone.utc).strftime("%Y%m%d%H%M%S") + secrets.token_hex(3)
    assert _RUN_ID.match(run_id)
    return run_id
