"""One cost per provider call, for spans from any language, across requests and batches; and
attribution from an ancestor span. The in-memory rule; collector.held makes it durable.

The SDK decides as spans end (otel_costs.counting); spans that reach the collector without it
(Node, Go, an OTel Collector) arrive in requests, children usually before parents, but an
exporter may send a call in one request and its outer span seconds later in another.
:class:`CallIndex` remembers the recent spans of each trace (stored rows, and the spans
without usage as :class:`collector.mapping.Link`) and applies the SDK's rule to each new row,
in the order the spans ended:

* usage rows already seen below it (children first): one with the same usage
  (otel_costs.counting.same_call) → the same call, traced twice: this row is
  ``counted_elsewhere``, ``counted_on`` the inner one; otherwise → ``aggregate`` (zero cost);
* else the same response id as a row that overlaps it in time, with the same usage (any
  trace: OpenLLMetry's Anthropic span is a root of its own) → ``counted_elsewhere``;
* else a costed row already seen *above* it (its outer span arrived first): the same usage →
  ``counted_elsewhere`` on that one; another usage → it counts, and ``suspect_of`` names the
  outer row: a pair the rules do not recognise, counted in ``suspects`` and shown by reports.

A counting row with neither user nor tenant takes them (and the feature, where it has none)
from its nearest ancestor that has a user or tenant. Ancestors end after their children, so
such a row is *held* until the walk up its trace ends: at an attributed ancestor, at the
root (nothing to take), or after ``wait_s`` seconds (stored as it is). That is the freshness
cost: a call whose trace is still open is queryable when its attributed ancestor arrives, at
most ``wait_s`` later. Rows with a user or tenant, and root rows, are never held.

Bounded: at most ``max_nodes`` spans remembered (oldest traces forgotten first; a trace is
kept ``keep_s`` after its last span), ``max_held`` rows held (beyond, rows are stored
without waiting), and ``max_nodes / 2`` spans without usage of traces with no call yet (an
exporter sending requests concurrently may deliver an ancestor before the call). With several collectors, send a trace's spans to one of them (the OTel
Collector's load-balancing exporter routes by trace id). Thread-safe: one lock.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from decimal import Decimal
from typing import Any, Callable, NamedTuple

from otel_costs.counting import UsageKey, same_call

from .mapping import (CACHE_READ, CACHE_WRITE, COSTS, DURATION, FEATURE, INPUT, OUTPUT, PARENT_ID,
                      RESPONSE_ID, SPAN_ID, STATUS, SUSPECT_OF, TENANT, TIMESTAMP, TRACE_ID, USER, COUNTED_ON, Link)

__all__ = ["CallIndex", "Decided", "Change", "NOT_COUNTED", "DEFAULT_WAIT_S"]

#: Statuses of rows that are stored for context and never summed.
NOT_COUNTED = frozenset({"aggregate", "counted_elsewhere"})
#: How long a call without attribution waits for an ancestor that has it (seconds).
DEFAULT_WAIT_S = 60.0
_MAX_HOPS = 64  # how far up a trace a walk goes (a deeper chain is not a real trace)
_ZERO = Decimal(0)

#: What the rule changed on a row: (status, counted_on, suspect_of, user, tenant, feature,
#: costs zeroed). Recorded ahead of the insert (collector.held), so a replay applies the
#: same decisions whatever arrived since.
Change = tuple[str, str, str, str, str, str, bool]


class Decided(NamedTuple):
    now: list[list[Any]]  # rows to insert with the batch
    held: list[list[Any]]  # rows that wait for an ancestor (collector.held keeps them)
    changes: dict[str, Change]  # span id → what the rule changed on that row of the batch


class _Node:
    __slots__ = ("parent", "start", "end", "key", "counts", "user", "tenant", "feature")

    def __init__(self, parent: str, start: int, end: int, key: UsageKey | None, counts: bool,
                 user: str, tenant: str, feature: str) -> None:
        self.parent, self.start, self.end, self.key, self.counts = parent, start, end, key, counts
        self.user, self.tenant, self.feature = user, tenant, feature


class _Trace:
    __slots__ = ("nodes", "below", "held", "seen")

    def __init__(self) -> None:
        self.nodes: dict[str, _Node] = {}
        # span id → the calls (span id, node) seen below it whose parent had not arrived (<= 2)
        self.below: dict[str, list[tuple[str, _Node]]] = {}
        self.held: dict[str, tuple[list[Any], float]] = {}  # span id → (row, deadline)
        self.seen = 0.0


class CallIndex:
    def __init__(self, wait_s: float = DEFAULT_WAIT_S, *, max_nodes: int = 100_000, max_held: int = 10_000,
                 keep_s: float = 600.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.wait_s = wait_s
        self.max_nodes = max_nodes
        self.max_held = max_held
        self.keep_s = max(keep_s, wait_s)
        self._clock = clock
        self._lock = threading.Lock()
        self._traces: OrderedDict[str, _Trace] = OrderedDict()
        self._holding: dict[str, _Trace] = {}  # the traces with rows that wait
        self._orphans: OrderedDict[str, list[Link]] = OrderedDict()  # links of traces with no call yet
        self._orphan_count = 0
        self._responses: OrderedDict[str, tuple[str, _Node]] = OrderedDict()
        self._nodes = 0
        self._held = 0
        self._released: list[list[Any]] = []
        self.suspects = 0  # rows that count below another counting row (rules did not pair them)

    @property
    def held_rows(self) -> int:
        return self._held

    def decide(self, rows: list[list[Any]], links: list[Link],
               recorded: tuple[dict[str, Change], set[str]] | None = None) -> Decided:
        """Apply the rule to a batch's rows (changed in place) and remember them and its links.

        ``recorded``: the changes and held span ids written ahead for this batch (a replay):
        applied as they are instead of deciding anew.
        """
        now = self._clock()
        items: list[tuple[int, int, Any]] = [(r[TIMESTAMP] + r[DURATION], 0, r) for r in rows]
        items.extend((link.end, 1, link) for link in links)
        items.sort(key=lambda item: (item[0], item[1]))  # children end first
        changes: dict[str, Change] = {}
        mine: set[str] = set()  # this batch's rows that wait
        touched: set[str] = set()  # traces whose waiting rows may be settled now
        with self._lock:
            for _, kind, item in items:
                if kind:
                    if self._link(item) and item.trace_id in self._holding:
                        touched.add(item.trace_id)
                elif self._row(item, recorded, changes, now):
                    mine.add(item[SPAN_ID])
                    touched.add(item[TRACE_ID])
                elif item[TRACE_ID] in self._holding:
                    touched.add(item[TRACE_ID])
            if recorded is not None:
                held_ids = recorded[1]
                for row in rows:
                    if row[SPAN_ID] in held_ids:
                        self._hold(row, now)  # a replay: they wait again (a restart may have loaded them)
            else:
                for trace_id in touched:
                    trace = self._holding.get(trace_id)
                    for span_id, (row, _) in list(trace.held.items()) if trace is not None else ():
                        if self._attribute(trace, row):
                            self._unhold(row)
                            if span_id in mine:
                                changes[span_id] = _state(row, span_id in changes and changes[span_id][6])
                            else:
                                self._released.append(row)
            keep: list[list[Any]] = []
            held: list[list[Any]] = []
            for row in rows:
                trace = self._holding.get(row[TRACE_ID])
                (held if trace is not None and row[SPAN_ID] in trace.held else keep).append(row)
            self._evict(now)
        return Decided(keep, held, changes)

    def hold(self, rows: list[list[Any]]) -> None:
        """Rows held before a restart (collector.held's journal): they wait again."""
        now = self._clock()
        with self._lock:
            for row in rows:
                trace = self._trace(row[TRACE_ID], now)
                if row[SPAN_ID] not in trace.nodes:
                    node = self._add_node(trace, row, counts=row[STATUS] not in NOT_COUNTED)
                    if node.counts:
                        self._pass_up(trace, row[PARENT_ID], [(row[SPAN_ID], node)])
                self._hold(row, now)

    def forget(self, rows: list[list[Any]]) -> None:
        """Rows that no longer wait (stored already)."""
        with self._lock:
            for row in rows:
                self._unhold(row)

    def due(self) -> list[list[Any]]:
        """Held rows whose wait is over (attributed, at the root, or out of time), taken out
        of the hold: the caller stores them."""
        now = self._clock()
        with self._lock:
            out, self._released = self._released, []
            for trace in list(self._holding.values()):
                for row, deadline in list(trace.held.values()):
                    if self._attribute(trace, row) or now >= deadline:
                        out.append(row)
                        self._unhold(row)
        return out

    def load(self, rows: list[tuple[Any, ...]]) -> None:
        """Remember rows stored before a restart, as (trace id, span id, parent id, start ns,
        end ns, input, cache read, cache write, output tokens, status, response id, user,
        tenant, feature), ordered by end: a late outer span or sibling still pairs with them."""
        now = self._clock()
        with self._lock:
            for (trace_id, span_id, parent, start, end, i, cr, cw, o, status, response, user, tenant,
                 feature) in rows:
                trace = self._trace(trace_id, now)
                if span_id in trace.nodes:
                    continue
                node = _Node(parent, start, end, (i, cr, cw, o), status not in NOT_COUNTED, user, tenant, feature)
                below = trace.below.pop(span_id, None)
                trace.nodes[span_id] = node
                self._nodes += 1
                self._pass_up(trace, parent, [(span_id, node)] if node.counts else below)
                if response and node.counts:
                    self._remember(response, span_id, node)
            self._evict(now)

    # -- the rule, under the lock ------------------------------------------------------

    def _row(self, row: list[Any], recorded: tuple[dict[str, Change], set[str]] | None,
             changes: dict[str, Change], now: float) -> bool:
        """Judge one row; True when it may wait for an ancestor's attribution."""
        trace = self._trace(row[TRACE_ID], now)
        span_id, parent = row[SPAN_ID], row[PARENT_ID]
        if span_id in trace.nodes:  # sent again: judged the first time
            return False
        status = row[STATUS]
        key = None if status == "invalid_usage" else (row[INPUT], row[CACHE_READ], row[CACHE_WRITE], row[OUTPUT])
        below = trace.below.pop(span_id, None)
        if recorded is not None:
            change = recorded[0].get(span_id)
            if change is not None:
                _apply(row, change)
            node = self._add_node(trace, row, counts=row[STATUS] not in NOT_COUNTED, key=key)
            self._pass_up(trace, parent, [(span_id, node)] if node.counts else below)
            return False
        start = row[TIMESTAMP]
        end = start + row[DURATION]
        carriers: list[tuple[str, _Node]] | None
        if status == "aggregate":
            carriers = below
        elif below:
            if len(below) == 1 and same_call(below[0][1].key, key):
                self._change(row, changes, "counted_elsewhere", counted_on=below[0][0])
            else:
                self._change(row, changes, "aggregate")
            carriers = below
        else:
            carriers = None
            response = row[RESPONSE_ID]
            first = self._responses.get(response) if response else None
            if (first is not None and first[0] != span_id and first[1].start <= end and start <= first[1].end
                    and same_call(first[1].key, key, output_slack=1)):
                self._change(row, changes, "counted_elsewhere", counted_on=first[0])
                carriers = [first]
            else:
                above = self._counting_ancestor(trace, parent)
                if above is not None:
                    if same_call(above[1].key, key):
                        self._change(row, changes, "counted_elsewhere", counted_on=above[0])
                    else:
                        self.suspects += 1
                        row[SUSPECT_OF] = above[0]
                        changes[span_id] = _state(row, False)
        counts = row[STATUS] not in NOT_COUNTED
        node = self._add_node(trace, row, counts=counts, key=key)
        if counts and carriers is None:
            carriers = [(span_id, node)]
            if row[RESPONSE_ID]:
                self._remember(row[RESPONSE_ID], span_id, node)
        self._pass_up(trace, parent, carriers)
        if (counts and parent and not row[USER] and not row[TENANT] and self.wait_s > 0
                and self._held < self.max_held):
            self._hold(row, now)
            return True
        return False

    def _link(self, link: Link) -> bool:
        trace = self._traces.get(link.trace_id)
        if trace is None:
            # No call of this trace seen yet: most such spans belong to traces without any, but
            # an exporter may send an ancestor before the call below it. Kept briefly, bounded.
            if self._orphan_count >= self.max_nodes // 2:
                _, dropped = self._orphans.popitem(last=False)
                self._orphan_count -= len(dropped)
            self._orphans.setdefault(link.trace_id, []).append(link)
            self._orphan_count += 1
            return False
        if link.span_id in trace.nodes:
            return False
        node = _Node(link.parent_id, 0, link.end, None, False, link.user, link.tenant, link.feature)
        trace.nodes[link.span_id] = node
        self._nodes += 1
        self._pass_up(trace, link.parent_id, trace.below.pop(link.span_id, None))
        return True

    def _attribute(self, trace: _Trace, row: list[Any]) -> bool:
        """Walk up from a held row: True when the walk is over (at an attributed ancestor,
        whose user, tenant and feature the row takes where it has none, or at the root)."""
        parent = row[PARENT_ID]
        for _ in range(_MAX_HOPS):
            if not parent:
                return True
            node = trace.nodes.get(parent)
            if node is None:
                return False
            if node.user or node.tenant:
                row[USER] = row[USER] or node.user
                row[TENANT] = row[TENANT] or node.tenant
                row[FEATURE] = row[FEATURE] or node.feature
                me = trace.nodes.get(row[SPAN_ID])
                if me is not None:  # a call further down may take it from this one
                    me.user, me.tenant, me.feature = row[USER], row[TENANT], row[FEATURE]
                return True
            parent = node.parent
        return True

    def _counting_ancestor(self, trace: _Trace, parent: str) -> tuple[str, _Node] | None:
        for _ in range(_MAX_HOPS):
            node = trace.nodes.get(parent) if parent else None
            if node is None:
                return None
            if node.counts and node.key is not None:
                return parent, node
            parent = node.parent
        return None

    def _change(self, row: list[Any], changes: dict[str, Change], status: str, counted_on: str = "") -> None:
        row[STATUS] = status
        row[COUNTED_ON] = counted_on
        row[COSTS:COSTS + 5] = (_ZERO,) * 5
        changes[row[SPAN_ID]] = _state(row, True)

    def _add_node(self, trace: _Trace, row: list[Any], *, counts: bool, key: UsageKey | None = None) -> _Node:
        if key is None and row[STATUS] != "invalid_usage":
            key = (row[INPUT], row[CACHE_READ], row[CACHE_WRITE], row[OUTPUT])
        start = row[TIMESTAMP]
        node = _Node(row[PARENT_ID], start, start + row[DURATION], key, counts, row[USER], row[TENANT], row[FEATURE])
        trace.nodes[row[SPAN_ID]] = node
        self._nodes += 1
        return node

    def _pass_up(self, trace: _Trace, parent: str, carriers: list[tuple[str, _Node]] | None) -> None:
        if not carriers or not parent or parent in trace.nodes:
            return
        pending = trace.below.setdefault(parent, [])
        if len(pending) < 2:  # one call, or "more than one": all a verdict needs
            pending.extend(carriers[:2 - len(pending)])

    def _remember(self, response: str, span_id: str, node: _Node) -> None:
        if len(self._responses) >= self.max_nodes:
            self._responses.popitem(last=False)
        self._responses[response] = (span_id, node)

    def _hold(self, row: list[Any], now: float) -> None:
        trace = self._trace(row[TRACE_ID], now)
        if row[SPAN_ID] not in trace.held:
            trace.held[row[SPAN_ID]] = (row, now + self.wait_s)
            self._held += 1
            self._holding[row[TRACE_ID]] = trace

    def _unhold(self, row: list[Any]) -> None:
        trace = self._holding.get(row[TRACE_ID])
        if trace is not None and trace.held.pop(row[SPAN_ID], None) is not None:
            self._held -= 1
            if not trace.held:
                del self._holding[row[TRACE_ID]]

    def _trace(self, trace_id: str, now: float) -> _Trace:
        trace = self._traces.get(trace_id)
        if trace is None:
            trace = self._traces[trace_id] = _Trace()
            orphans = self._orphans.pop(trace_id, None) if self._orphans else None
            if orphans:
                self._orphan_count -= len(orphans)
                for link in orphans:
                    self._link(link)
        else:
            self._traces.move_to_end(trace_id)
        trace.seen = now
        return trace

    def _evict(self, now: float) -> None:
        """Forget the oldest traces: quiet for ``keep_s``, or past ``max_nodes``. A trace whose
        rows wait is kept for their wait (due() releases them), unless memory is full: its rows
        are then released as they are."""
        for _ in range(len(self._traces)):
            trace_id, trace = next(iter(self._traces.items()))
            full = self._nodes > self.max_nodes
            if not full and trace.seen > now - self.keep_s:
                return
            if trace.held and not full:
                self._traces.move_to_end(trace_id)
                continue
            for row, _ in trace.held.values():
                self._released.append(row)
                self._held -= 1
            self._holding.pop(trace_id, None)
            self._nodes -= len(trace.nodes)
            del self._traces[trace_id]


def _state(row: list[Any], zeroed: bool) -> Change:
    return (row[STATUS], row[COUNTED_ON], row[SUSPECT_OF], row[USER], row[TENANT], row[FEATURE], zeroed)


def _apply(row: list[Any], change: Change) -> None:
    row[STATUS], row[COUNTED_ON], row[SUSPECT_OF], row[USER], row[TENANT], row[FEATURE], zeroed = change
    if zeroed:
        row[COSTS:COSTS + 5] = (_ZERO,) * 5
