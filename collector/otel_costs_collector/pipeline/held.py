"""Makes otel_costs_collector.mapping.calls durable: what the rule decided for a batch is written ahead of its
insert, and rows that wait for an ancestor are journaled until they are stored.

In ``directory`` (``<spool>/calls``), for a batch with insert token T:

* ``T.decided`` — the rule's changes to the batch's rows and the ids of those that wait,
  written before the insert and removed after it. A replay of the batch (spool, crash) applies
  them as they are, so every table sees the same rows whatever arrived since.
* ``T.held`` — the rows of T that wait, removed once all of them are stored.
* ``settle-S.json`` — rows whose wait ended, with the held rows they consume, written before
  their insert (token S) and removed after it and after the ``.held`` files were updated; on
  start, a leftover one is inserted again (dropped by every table that has it) and completed.

Files are not fsynced (like the spool's in-flight files, they guard against a crash of the
process). Thread-safe.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
from decimal import Decimal
from typing import Any, Callable, Iterable, Mapping, Sequence

from otel_costs.pricing import Pricer
from otel_costs.usage import TokenUsage
from otel_costs_collector.mapping import billed_facts
from otel_costs_collector.mapping.calls import CallIndex, Change
from otel_costs_collector.mapping.rows import Link
from otel_costs_collector.pipeline.types import Rows, Stage
from otel_costs_collector.storage.columns import COLUMNS, COSTS, N_COSTS, SPAN_ID, TRACE_ID

__all__ = ["CountOnce", "HeldCalls"]

_log = logging.getLogger("otel_costs.collector")
_DECIDED, _HELD, _SETTLE = ".decided", ".held", "settle-"
_STALE_S = 7 * 86400  # a .decided file of a batch storage refused is removed after this
#: ``write(rows)``: the stages that insert (otel_costs_collector.pipeline.types.Stage).
Write = Callable[[Rows], None]


class HeldCalls:
    """The rule (``index``) with its files. ``before``/``after`` around a batch's insert;
    ``settle`` from one thread, every so often."""

    def __init__(self, index: CallIndex, directory: str, pricer: Pricer | None = None) -> None:
        """``pricer``: prices a counted row again with the facts of the spans counted on it
        (None: rows are stored with their own facts only)."""
        self.index = index
        self.directory = directory
        self.pricer = pricer
        self.facts_lost = 0  # rows whose billed facts could not reach their counted row
        os.makedirs(directory, exist_ok=True)
        self._lock = threading.Lock()
        self._held: dict[str, dict[str, list[Any]]] = {}  # batch's insert token → span id → row
        self._origin: dict[tuple[str, str], str] = {}  # (trace id, span id) → batch's insert token
        self._load()

    def before(
        self,
        rows: list[list[Any]],
        links: Sequence[Link],
        insert_token: str,
        facts: Mapping[str, TokenUsage] | None = None,
    ) -> list[list[Any]]:
        """Decide a batch's rows (a replay: as recorded), the counted rows taking the billed
        facts of the spans counted on them (``facts``: Rows.facts; mapping.billed_facts);
        returns the rows to insert now. Raises OSError when the decisions cannot be written ahead."""
        return self.judge(rows, links, insert_token, facts)[0]

    def judge(
        self,
        rows: list[list[Any]],
        links: Sequence[Link],
        insert_token: str,
        facts: Mapping[str, TokenUsage] | None = None,
    ) -> tuple[list[list[Any]], bool]:
        """``before``, and whether the rows to insert now are all the batch's rows, none of
        them changed by the rule."""
        recorded = self._read_decided(insert_token)
        if recorded is not None:
            with self._lock:  # a replay: rows stored since (by settle) must not wait again
                journaled = self._held.get(insert_token, {})
                done = {s for s in recorded[1] if s not in journaled}
        decided = self.index.decide(rows, links, recorded)
        repriced = 0
        if facts and self.pricer is not None:
            repriced, lost = billed_facts.merge([*decided.now, *decided.held], facts, self.pricer)
            self.facts_lost += lost
        if recorded is not None and done:
            self.index.forget([row for row in decided.held if row[SPAN_ID] in done])
            decided = decided._replace(held=[row for row in decided.held if row[SPAN_ID] not in done])
        if recorded is None and (decided.changes or decided.held):
            held_ids = [row[SPAN_ID] for row in decided.held]
            self._write(insert_token + _DECIDED, {"changes": decided.changes, "held": held_ids})
        if decided.held:
            with self._lock:
                mine = self._held.setdefault(insert_token, {})
                for row in decided.held:
                    mine[row[SPAN_ID]] = row
                    self._origin[(row[TRACE_ID], row[SPAN_ID])] = insert_token
                self._write(insert_token + _HELD, _rows_doc(mine.values()))
        if decided.released:
            # Attributed by this batch, stored by the next settle: journaled with their
            # attribution first, so a crash in between does not lose it (the ancestor that
            # carried it will not come again).
            with self._lock:
                origins = {self._origin.get((row[TRACE_ID], row[SPAN_ID])) for row in decided.released}
                for origin in origins:
                    kept = self._held.get(origin) if origin is not None else None
                    if origin is not None and kept:
                        self._write(origin + _HELD, _rows_doc(kept.values()))
        untouched = not decided.changes and not repriced and len(decided.now) == len(rows)
        return decided.now, untouched

    def after(self, insert_token: str) -> None:
        """The batch's insert returned."""
        _remove(os.path.join(self.directory, insert_token + _DECIDED))

    def settle(self, write: Write, everything: bool = False) -> int:
        """Store the rows whose wait is over (``everything``: all that wait, as they are — a
        collector that stops stores what it acknowledged), and finish a settle a crash or a
        failed insert interrupted; returns how many. Raises the storage error (the rows are
        tried again on the next call)."""
        stored = 0
        for name in sorted(n for n in os.listdir(self.directory) if n.startswith(_SETTLE)):
            doc = _read(os.path.join(self.directory, name))
            if doc is None:
                continue
            stored += self._finish(name, _rows_of(doc), doc["consumed"], write)
        rows = self.index.due(everything)
        if not rows:
            return stored
        with self._lock:
            consumed: dict[str, list[str]] = {}
            for row in rows:
                origin = self._origin.get((row[TRACE_ID], row[SPAN_ID]))
                if origin is not None:
                    consumed.setdefault(origin, []).append(row[SPAN_ID])
        ids = sorted(f"{row[TRACE_ID]}{row[SPAN_ID]}" for row in rows)
        insert_token = "settle-" + hashlib.sha256("".join(ids).encode()).hexdigest()[:32]
        name = insert_token + ".json"
        self._write(name, {**_rows_doc(rows), "consumed": consumed})
        return stored + self._finish(name, rows, consumed, write)

    def _finish(self, name: str, rows: list[list[Any]], consumed: dict[str, list[str]], write: Write) -> int:
        write(Rows(rows, name[: -len(".json")]))
        with self._lock:
            for origin, span_ids in consumed.items():
                mine = self._held.get(origin)
                if mine is None:
                    continue
                for span_id in span_ids:
                    row = mine.pop(span_id, None)
                    if row is not None:
                        self._origin.pop((row[TRACE_ID], span_id), None)
                if mine:
                    self._write(origin + _HELD, _rows_doc(mine.values()))
                else:
                    del self._held[origin]
                    _remove(os.path.join(self.directory, origin + _HELD))
        _remove(os.path.join(self.directory, name))
        return len(rows)

    def _read_decided(self, insert_token: str) -> tuple[dict[str, Change], set[str]] | None:
        doc = _read(os.path.join(self.directory, insert_token + _DECIDED))
        if doc is None:
            return None
        return {k: tuple(v) for k, v in doc["changes"].items()}, set(doc["held"])  # type: ignore[misc]

    def _load(self) -> None:
        """After a restart: the rows that were waiting wait again, but for those a leftover
        settle file consumes (it is completed by the next ``settle``)."""
        names = os.listdir(self.directory)
        settling: set[tuple[str, str]] = set()
        for name in names:
            if name.endswith(".tmp"):
                _remove(os.path.join(self.directory, name))
            elif name.startswith(_SETTLE):
                doc = _read(os.path.join(self.directory, name))
                for origin, span_ids in (doc or {}).get("consumed", {}).items():
                    settling.update((origin, s) for s in span_ids)
            elif name.endswith(_DECIDED):
                path = os.path.join(self.directory, name)
                if time.time() - os.path.getmtime(path) > _STALE_S:
                    _remove(path)
        waiting = []
        for name in names:
            if name.endswith(_HELD):
                insert_token = name[: -len(_HELD)]
                doc = _read(os.path.join(self.directory, name))
                mine = self._held.setdefault(insert_token, {})
                for row in _rows_of(doc or {}):
                    mine[row[SPAN_ID]] = row
                    self._origin[(row[TRACE_ID], row[SPAN_ID])] = insert_token
                    if (insert_token, row[SPAN_ID]) not in settling:
                        waiting.append(row)
        if waiting:
            self.index.hold(waiting)
            _log.info("%d calls wait again for their ancestors' attribution", len(waiting))

    def _write(self, name: str, doc: dict[str, Any]) -> None:
        path = os.path.join(self.directory, name)
        with open(path + ".tmp", "w", encoding="utf-8") as f:
            json.dump(doc, f, default=str, separators=(",", ":"))
        os.replace(path + ".tmp", path)


class CountOnce:
    """The stage that applies the one-cost-per-call rule to a batch's rows (``calls``) and
    writes what is stored now to ``inner``; rows that wait are journaled (``calls.settle``
    stores them later: otel_costs_collector.pipeline.settling). Thread-safe when ``inner`` is."""

    def __init__(self, calls: HeldCalls, inner: Stage[Rows, None]) -> None:
        self._calls = calls
        self._inner = inner

    def start(self) -> None:
        pass

    def write(self, rows: Rows) -> None:
        """Raises OSError (the decisions could not be written ahead) or ``inner``'s errors."""
        now, untouched = self._calls.judge(rows.rows, rows.links, rows.insert_token, rows.facts)
        # Rows the rule left as they were mapped keep their Native block; else it is made anew.
        self._inner.write(Rows(now, rows.insert_token, block=rows.block if untouched else None))
        self._calls.after(rows.insert_token)

    def close(self) -> None:
        pass


def _rows_doc(rows: Iterable[list[Any]]) -> dict[str, Any]:
    """Rows as JSON, with the column names once: a journal outlives a change of the columns."""
    return {
        "columns": list(COLUMNS),
        "rows": [[str(v) if isinstance(v, Decimal) else v for v in row] for row in rows],
    }


def _rows_of(doc: dict[str, Any]) -> list[list[Any]]:
    """The rows of a journal document in today's columns; a document without column names was
    written before migration 0014; a column it lacks gets its default."""
    names = doc.get("columns") or _COLUMNS_BEFORE_0014
    rows = []
    for raw in doc.get("rows", []):
        named = dict(zip(names, raw))
        row = [named.get(name, _DEFAULTS.get(name, "")) for name in COLUMNS]
        row[COSTS : COSTS + N_COSTS] = [Decimal(v) for v in row[COSTS : COSTS + N_COSTS]]
        rows.append(row)
    return rows


#: Values of the columns a row journaled by an earlier version lacks.
_DEFAULTS: dict[str, Any] = {
    "cache_write_1h_tokens": 0,
    "web_searches": 0,
    "cost_web_search": "0",
    "cost_adjustment": "0",
    "cost_source": "local",
}
#: The columns of a journal written before 0014 (documents without column names), in order:
#: today's minus every column added since (0014's, 0016's scope, 0019's release).
_COLUMNS_BEFORE_0014 = tuple(
    name for name in COLUMNS if name not in (*_DEFAULTS, "service_tier", "scope", "service_version", "environment")
)


def _read(path: str) -> dict[str, Any] | None:
    try:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        _log.error("unreadable call file %s (%s); moved aside", path, exc)
        os.replace(path, path + ".unreadable")
        return None
    return doc if isinstance(doc, dict) else None


def _remove(path: str) -> None:
    try:
        os.remove(path)
    except FileNotFoundError:
        pass
