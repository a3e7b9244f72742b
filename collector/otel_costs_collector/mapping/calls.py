"""One cost per provider call, for spans from any language, across requests and batches; and
attribution from an ancestor span. The in-memory rule; otel_costs_collector.pipeline.held makes it durable.

The SDK decides as spans end (otel_costs.counting); spans that reach the collector without it
(Node, Go, an OTel Collector) arrive in requests, children usually before parents, but an
exporter may send a call in one request and its outer span seconds later in another.
:class:`CallIndex` remembers the recent spans of each trace (stored rows, and the spans
without usage as :class:`otel_costs_collector.mapping.rows.Link`) and applies the one rule,
:func:`otel_costs.counting.decide`, to each new row, in the order the spans ended: it finds
the rows already seen below it, an overlapping row with its response id (any trace:
OpenLLMetry's Anthropic span is a root of its own) and, because an exporter may send an outer
span first, the nearest counting row above it. A row found to be a call below a counting row
of another usage counts, and ``suspect_of`` names the outer row: a pair the rules do not
recognise, counted in ``suspects`` and shown by reports.

A counting row with neither user nor tenant takes them (and the feature, where it has none)
from its nearest ancestor that has a user or tenant. Ancestors end after their children, so
such a row is *held* until the walk up its trace ends: at an attributed ancestor, at the
root (nothing to take), or after ``wait_s`` seconds (stored as it is). That is the freshness
cost: a call whose trace is still open is queryable when its attributed ancestor arrives, at
most ``wait_s`` later. Rows with a user or tenant, and root rows, are never held.

Bounded: at most ``max_nodes`` spans remembered, each for ``keep_s`` (oldest forgotten
first; ~400 bytes each), ``max_held`` rows held (beyond, rows are stored without waiting),
and ``max_nodes / 2`` spans without usage of traces with no call yet (an exporter sending
requests concurrently may deliver an ancestor before the call). Spans are remembered as flat
tuples keyed by trace and span id, which the garbage collector does not traverse: with an
object per span, its full collections cost more than the rule. With several collectors, send
a trace's spans to one of them (the OTel Collector's load-balancing exporter routes by trace
id). Thread-safe: one lock.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from decimal import Decimal
from typing import Any, Callable, NamedTuple

from otel_costs.counting import NOT_COUNTED, Found, decide, first_same
from otel_costs.pricing import PricingStatus
from otel_costs_collector.mapping.rows import Link
from otel_costs_collector.storage.columns import (
    CACHE_READ,
    CACHE_WRITE,
    COSTS,
    COUNTED_ON,
    DURATION,
    FEATURE,
    INPUT,
    N_COSTS,
    OUTPUT,
    PARENT_ID,
    PROVIDER,
    REQUEST_TOKEN,
    RESPONSE_ID,
    SCOPE,
    SERVICE,
    SPAN_ID,
    STATUS,
    SUSPECT_OF,
    TENANT,
    TIMESTAMP,
    TRACE_ID,
    USER,
)

__all__ = ["CallIndex", "Decided", "Change", "DUPLICATE", "NOT_COUNTED", "DEFAULT_WAIT_S"]

AGGREGATE = PricingStatus.AGGREGATE.value
COUNTED_ELSEWHERE = PricingStatus.COUNTED_ELSEWHERE.value
_INVALID_USAGE = PricingStatus.INVALID_USAGE.value
#: How long a call without attribution waits for an ancestor that has it (seconds).
DEFAULT_WAIT_S = 60.0
_MAX_HOPS = 64  # how far up a trace a walk goes (a deeper chain is not a real trace)
_ZERO = Decimal(0)

#: What the rule changed on a row: (status, counted_on, suspect_of, user, tenant, feature,
#: costs zeroed). Recorded ahead of the insert (otel_costs_collector.pipeline.held), so a replay applies the
#: same decisions whatever arrived since.
Change = tuple[str, str, str, str, str, str, bool]


class Decided(NamedTuple):
    now: list[list[Any]]  # rows to insert with the batch
    held: list[list[Any]]  # rows that wait for an ancestor (otel_costs_collector.pipeline.held keeps them)
    changes: dict[str, Change]  # span id → what the rule changed on that row of the batch
    released: list[list[Any]]  # rows of earlier batches this one attributed (due() hands them out)


# A remembered span, keyed by trace id + span id (hex): a tuple of atoms, so the garbage
# collector untracks it. _KEY is the usage (None for a span without usage).
# _TOKEN: the request that brought it ("" for a link), to tell a replay from a resend.
# _SCOPE: the instrumentation scope that made it.
_PARENT, _START, _END, _KEY, _COUNTS, _USER, _TENANT, _FEATURE, _SEEN, _TOKEN, _SCOPE = range(11)
#: The status of a span sent again in another request after it was stored: not stored again.
DUPLICATE = "duplicate"
#: A call passed up to an ancestor: (its trace+span key, its node).
_Carrier = tuple


class CallIndex:
    def __init__(
        self,
        wait_s: float = DEFAULT_WAIT_S,
        *,
        max_nodes: int = 100_000,
        max_held: int = 10_000,
        keep_s: float = 600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.wait_s = wait_s
        self.max_nodes = max_nodes
        self.max_held = max_held
        self.keep_s = max(keep_s, wait_s)
        self._clock = clock
        self._lock = threading.Lock()
        self._nodes: OrderedDict[str, tuple] = OrderedDict()  # trace+span → node, oldest first
        self._below: OrderedDict[str, tuple] = OrderedDict()  # trace+parent → (<= 2 carriers)
        self._traces: OrderedDict[str, float] = OrderedDict()  # traces with a call → last seen
        self._orphans: OrderedDict[str, list[Link]] = OrderedDict()  # links of traces with no call yet
        self._orphan_count = 0
        self._responses: OrderedDict[str, _Carrier] = OrderedDict()
        # (service, provider, usage) → counting calls with that usage (<= 4): a second
        # instrumentation's span of the same call, beside it, pairs with one of them.
        self._alike: OrderedDict[tuple, tuple] = OrderedDict()
        self._holding: dict[str, dict[str, tuple[list[Any], float]]] = {}  # trace → span → (row, deadline)
        self._held = 0
        self._released: list[list[Any]] = []
        self._batch_links: dict[str, str] = {}  # while a batch is judged: its links' parents
        self.suspects = 0  # rows that count below another counting row (rules did not pair them)

    @property
    def held_rows(self) -> int:
        return self._held

    @property
    def remembered(self) -> int:
        """Spans remembered now (at most ``max_nodes``)."""
        return len(self._nodes)

    def decide(
        self, rows: list[list[Any]], links: list[Link], recorded: tuple[dict[str, Change], set[str]] | None = None
    ) -> Decided:
        """Apply the rule to a batch's rows (changed in place) and remember them and its links.

        ``recorded``: the changes and held span ids written ahead for this batch (a replay):
        applied as they are instead of deciding anew.
        """
        now = self._clock()
        # Children end first; a row before a span without usage that ends at the same instant.
        items: list[Any] = sorted([*rows, *links], key=_end) if links else sorted(rows, key=_end)
        changes: dict[str, Change] = {}
        mine: set[str] = set()  # this batch's rows that wait
        touched: set[str] = set()  # traces whose waiting rows may be settled now
        holding = self._holding
        with self._lock:
            self._batch_links = {link.trace_id + link.span_id: link.parent_id for link in links} if links else {}
            for item in items:
                if type(item) is not list:
                    if self._link(item, now) and item.trace_id in holding:
                        touched.add(item.trace_id)
                elif self._row(item, recorded, changes, now):
                    mine.add(item[SPAN_ID])
                    touched.add(item[TRACE_ID])
                elif holding and item[TRACE_ID] in holding:
                    touched.add(item[TRACE_ID])
            if recorded is not None:
                held_ids: set[str] = recorded[1]
                for row in rows:
                    if row[SPAN_ID] in held_ids:
                        self._hold(row, now)  # a replay: they wait again (a restart may have loaded them)
            released: list[list[Any]] = []
            if recorded is None:
                for trace_id in touched:
                    for span_id, (row, _) in list(holding.get(trace_id, {}).items()):
                        if self._attribute(row):
                            self._unhold(row)
                            if span_id in mine:
                                changes[span_id] = _state(row, span_id in changes and changes[span_id][6])
                            else:
                                released.append(row)
                self._released.extend(released)
            keep: list[list[Any]] = []
            held: list[list[Any]] = []
            for row in rows:
                if row[STATUS] == DUPLICATE:
                    continue
                waiting = holding[row[TRACE_ID]].get(row[SPAN_ID]) if row[TRACE_ID] in holding else None
                if waiting is None:
                    keep.append(row)
                elif waiting[0] is row:
                    held.append(row)
                # else: the span was sent again while it waits (an exporter's retry after a
                # restart): the waiting row is stored, this one is not
            self._evict(now)
            self._batch_links = {}
        return Decided(keep, held, changes, released)

    def hold(self, rows: list[list[Any]]) -> None:
        """Rows held before a restart (otel_costs_collector.pipeline.held's journal): they wait again."""
        now = self._clock()
        with self._lock:
            for row in rows:
                me = row[TRACE_ID] + row[SPAN_ID]
                if me not in self._nodes:
                    node = self._remember(me, row, row[STATUS] not in NOT_COUNTED, now)
                    if node[_COUNTS] and row[PARENT_ID]:
                        self._pass_up(row[TRACE_ID] + row[PARENT_ID], ((me, node),))
                self._hold(row, now)

    def forget(self, rows: list[list[Any]]) -> None:
        """Rows that no longer wait (stored already)."""
        with self._lock:
            for row in rows:
                self._unhold(row)

    def due(self, everything: bool = False) -> list[list[Any]]:
        """Held rows whose wait is over (attributed, at the root, or out of time; with
        ``everything``, all of them), taken out of the hold: the caller stores them."""
        now = self._clock()
        with self._lock:
            out, self._released = self._released, []
            for waiting in list(self._holding.values()):
                for row, deadline in list(waiting.values()):
                    # (a row attributed before a restart has its user or tenant already)
                    if row[USER] or row[TENANT] or self._attribute(row) or now >= deadline or everything:
                        out.append(row)
                        self._unhold(row)
        return out

    def load(self, rows: list[tuple[Any, ...]]) -> None:
        """Remember rows stored before a restart, as (trace id, span id, parent id, start ns,
        end ns, input, cache read, cache write, output tokens, status, response id, user,
        tenant, feature, request token, service, provider, instrumentation scope), ordered by
        end: a late outer span or sibling still pairs with them."""
        now = self._clock()
        with self._lock:
            for (
                trace_id,
                span_id,
                parent,
                start,
                end,
                i,
                cr,
                cw,
                o,
                status,
                response,
                user,
                tenant,
                feature,
                token,
                service,
                provider,
                scope,
            ) in rows:
                me = trace_id + span_id
                if me in self._nodes:
                    continue
                self._traces[trace_id] = now
                node = (
                    parent,
                    start,
                    end,
                    (i, cr, cw, o),
                    status not in NOT_COUNTED,
                    user,
                    tenant,
                    feature,
                    now,
                    token,
                    scope,
                )
                self._nodes[me] = node
                below = self._below.pop(me, None) if self._below else None
                if parent:
                    self._pass_up(trace_id + parent, ((me, node),) if node[_COUNTS] else below)
                if response and node[_COUNTS]:
                    self._respond(response, (me, node))
                if node[_COUNTS]:
                    self._note_alike((service, provider, node[_KEY]), (me, node))
            self._evict(now)

    # -- the rule, under the lock ------------------------------------------------------

    def _row(
        self,
        row: list[Any],
        recorded: tuple[dict[str, Change], set[str]] | None,
        changes: dict[str, Change],
        now: float,
    ) -> bool:
        """Judge one row; True when it may wait for an ancestor's attribution."""
        trace_id, span_id, parent = row[TRACE_ID], row[SPAN_ID], row[PARENT_ID]
        me = trace_id + span_id
        seen = self._nodes.get(me)
        if seen is not None:  # judged before: a replay of its batch, or the span sent again
            if recorded is not None:
                change = recorded[0].get(span_id)
                if change is not None:
                    _apply(row, change)
            elif seen[_START] and seen[_TOKEN] != row[REQUEST_TOKEN]:
                # Another request with a span already stored (an exporter that resends after a
                # timeout, a proxy that duplicates): the call is stored once.
                row[STATUS] = DUPLICATE
                changes[span_id] = _state(row, False)
            return False
        traces = self._traces
        if trace_id in traces:
            traces.move_to_end(trace_id)
        elif self._orphans and trace_id in self._orphans:
            traces[trace_id] = now
            self._adopt(trace_id, now)
        traces[trace_id] = now
        up = trace_id + parent if parent else ""
        below = self._below.pop(me, None) if self._below else None
        if recorded is not None:
            change = recorded[0].get(span_id)
            if change is not None:
                _apply(row, change)
                if row[STATUS] == DUPLICATE:
                    return False
            node = self._remember(me, row, row[STATUS] not in NOT_COUNTED, now)
            if up:
                self._pass_up(up, ((me, node),) if node[_COUNTS] else below)
            return False
        status = row[STATUS]
        key = None if status == _INVALID_USAGE else (row[INPUT], row[CACHE_READ], row[CACHE_WRITE], row[OUTPUT])
        start = row[TIMESTAMP]
        end = start + row[DURATION]
        carriers: tuple | None = below
        first = None
        if status != AGGREGATE and not below:
            response = row[RESPONSE_ID]
            first = self._responses.get(response) if response else None
            if first is not None and (first[0] == me or not (first[1][_START] <= end and start <= first[1][_END])):
                first = None
        alike: tuple = ()
        if status != AGGREGATE and not below and first is None and key is not None:
            alike = tuple(
                carrier
                for carrier in self._alike.get((row[SERVICE], row[PROVIDER], key), ())
                if _beside(carrier, me, parent, row[SCOPE], start, end)
            )
        above: list[_Carrier] = []  # the counting row above, once looked for

        def counting_above() -> Any:
            found = self._counting_ancestor(up)
            if found is None:
                return False
            above.append(found)
            return found[1][_KEY]

        found = decide(
            key,
            aggregate=status == AGGREGATE,
            below=[carrier[1][_KEY] for carrier in below or ()],
            same_response=False if first is None else first[1][_KEY],
            beside=[carrier[1][_KEY] for carrier in alike],
            above=counting_above if up else None,
        )
        if found is Found.SAME_AS_BELOW:
            assert below is not None
            self._change(row, changes, COUNTED_ELSEWHERE, counted_on=below[0][0][32:])
        elif found is Found.AGGREGATE and status != AGGREGATE:
            self._change(row, changes, AGGREGATE)
        elif found is Found.SAME_RESPONSE:
            assert first is not None
            self._change(row, changes, COUNTED_ELSEWHERE, counted_on=first[0][32:])
            carriers = (first,)
        elif found is Found.SAME_BESIDE:
            other = alike[first_same(key, [carrier[1][_KEY] for carrier in alike]) or 0]
            self._change(row, changes, COUNTED_ELSEWHERE, counted_on=other[0][32:])
            carriers = (other,)
        elif found is Found.SAME_AS_ABOVE:
            self._change(row, changes, COUNTED_ELSEWHERE, counted_on=above[0][0][32:])
        elif found is Found.SUSPECT:
            self.suspects += 1
            row[SUSPECT_OF] = above[0][0][32:]
            changes[span_id] = _state(row, False)
        counts = row[STATUS] not in NOT_COUNTED
        node = self._remember(me, row, counts, now)
        if counts and carriers is None:
            carriers = ((me, node),)
            if row[RESPONSE_ID]:
                self._respond(row[RESPONSE_ID], carriers[0])
            if key is not None:
                self._note_alike((row[SERVICE], row[PROVIDER], key), carriers[0])
        if carriers and up:
            self._pass_up(up, carriers)
        if counts and up and not row[USER] and not row[TENANT] and self.wait_s > 0 and self._held < self.max_held:
            self._hold(row, now)
            return True
        return False

    def _link(self, link: Link, now: float) -> bool:
        """Remember a span without usage of a trace with a call; True when remembered."""
        trace_id = link.trace_id
        if trace_id not in self._traces:
            # No call of this trace seen yet: most such spans belong to traces without any, but
            # an exporter may send an ancestor before the call below it. Kept briefly, bounded.
            if self._orphan_count >= self.max_nodes // 2:
                _, dropped = self._orphans.popitem(last=False)
                self._orphan_count -= len(dropped)
            self._orphans.setdefault(trace_id, []).append(link)
            self._orphan_count += 1
            return False
        me = trace_id + link.span_id
        if me in self._nodes:
            return False
        self._nodes[me] = (link.parent_id, 0, link.end, None, False, link.user, link.tenant, link.feature, now, "", "")
        below = self._below.pop(me, None) if self._below else None
        if below and link.parent_id:
            self._pass_up(trace_id + link.parent_id, below)
        return True

    def _adopt(self, trace_id: str, now: float) -> None:
        links = self._orphans.pop(trace_id)
        self._orphan_count -= len(links)
        for link in links:
            self._link(link, now)

    def _attribute(self, row: list[Any]) -> bool:
        """Walk up from a held row: True when the walk is over (at an attributed ancestor,
        whose user, tenant and feature the row takes where it has none, or at the root)."""
        trace_id, parent = row[TRACE_ID], row[PARENT_ID]
        nodes = self._nodes
        for _ in range(_MAX_HOPS):
            if not parent:
                return True
            node = nodes.get(trace_id + parent)
            if node is None:
                return False
            if node[_USER] or node[_TENANT]:
                row[USER] = row[USER] or node[_USER]
                row[TENANT] = row[TENANT] or node[_TENANT]
                row[FEATURE] = row[FEATURE] or node[_FEATURE]
                me = trace_id + row[SPAN_ID]
                mine = nodes.get(me)
                if mine is not None:  # a call further down may take it from this one
                    nodes[me] = mine[:_USER] + (row[USER], row[TENANT], row[FEATURE]) + mine[_SEEN:]
                return True
            parent = node[_PARENT]
        return True

    def _counting_ancestor(self, up: str) -> _Carrier | None:
        """The nearest counting row above ``up`` (trace+span), through the spans remembered and
        the spans without usage of the batch being judged (they end after the call below them,
        so they are not remembered yet when it is judged)."""
        trace_id = up[:32]
        for _ in range(_MAX_HOPS):
            node = self._nodes.get(up)
            if node is None:
                parent = self._batch_links.get(up)
                if not parent:
                    return None
                up = trace_id + parent
                continue
            if node[_COUNTS] and node[_KEY] is not None:
                return up, node
            if not node[_PARENT]:
                return None
            up = trace_id + node[_PARENT]
        return None

    def _change(self, row: list[Any], changes: dict[str, Change], status: str, counted_on: str = "") -> None:
        row[STATUS] = status
        row[COUNTED_ON] = counted_on
        row[COSTS : COSTS + N_COSTS] = (_ZERO,) * N_COSTS
        changes[row[SPAN_ID]] = _state(row, True)

    def _remember(self, me: str, row: list[Any], counts: bool, now: float) -> tuple:
        start = row[TIMESTAMP]
        key = None if row[STATUS] == _INVALID_USAGE else (row[INPUT], row[CACHE_READ], row[CACHE_WRITE], row[OUTPUT])
        node = (
            row[PARENT_ID],
            start,
            start + row[DURATION],
            key,
            counts,
            row[USER],
            row[TENANT],
            row[FEATURE],
            now,
            row[REQUEST_TOKEN],
            row[SCOPE],
        )
        self._nodes[me] = node
        self._traces[row[TRACE_ID]] = now
        return node

    def _pass_up(self, up: str, carriers: tuple | None) -> None:
        """Note calls below the span ``up`` (trace+span) while it has not arrived."""
        if not carriers or up in self._nodes:
            return
        pending = self._below.get(up)
        if pending is None:
            self._below[up] = carriers[:2]
        elif len(pending) < 2:  # one call, or "more than one": all a verdict needs
            self._below[up] = (pending + carriers)[:2]

    def _note_alike(self, alike: tuple, carrier: _Carrier) -> None:
        if len(self._alike) >= self.max_nodes:
            self._alike.popitem(last=False)
        self._alike[alike] = (carrier, *self._alike.pop(alike, ()))[:4]

    def _respond(self, response: str, carrier: _Carrier) -> None:
        if len(self._responses) >= self.max_nodes:
            self._responses.popitem(last=False)
        self._responses[response] = carrier

    def _hold(self, row: list[Any], now: float) -> None:
        waiting = self._holding.setdefault(row[TRACE_ID], {})
        if row[SPAN_ID] not in waiting:
            waiting[row[SPAN_ID]] = (row, now + self.wait_s)
            self._held += 1

    def _unhold(self, row: list[Any]) -> None:
        waiting = self._holding.get(row[TRACE_ID])
        if waiting is not None and waiting.pop(row[SPAN_ID], None) is not None:
            self._held -= 1
            if not waiting:
                del self._holding[row[TRACE_ID]]

    def _evict(self, now: float) -> None:
        """Forget the oldest spans, calls passed up and traces: past ``keep_s`` or the bounds.
        Rows that wait are not forgotten (due() releases them at their deadline)."""
        quiet = now - self.keep_s
        tables: tuple[tuple[OrderedDict[Any, Any], int, Callable[[Any], float]], ...] = (
            (self._nodes, self.max_nodes, lambda v: v[_SEEN]),
            (self._below, self.max_nodes // 2, lambda v: v[0][1][_SEEN]),
            (self._traces, self.max_nodes, lambda v: v),
        )
        for table, limit, seen in tables:
            while table:
                key, value = table.popitem(last=False)
                if len(table) < limit and seen(value) > quiet:
                    table[key] = value
                    table.move_to_end(key, last=False)  # the oldest stays first
                    break


def _beside(carrier: _Carrier, me: str, parent: str, scope: str, start: int, end: int) -> bool:
    """Whether ``carrier`` may be the same call as the row ``me`` (trace+span) beside it: made
    by another instrumentation, overlapping it in time, in its trace or, for a root, a root."""
    other, node = carrier
    return (
        other != me
        and node[_SCOPE] != scope
        and node[_START] <= end
        and start <= node[_END]
        and (other[:32] == me[:32] or (not parent and not node[_PARENT]))
    )


def _end(item: Any) -> int:
    """Sort key: a row's or a link's end (ns), doubled, plus one for a link."""
    if type(item) is list:
        return (item[TIMESTAMP] + item[DURATION]) << 1
    return (item.end << 1) | 1


def _state(row: list[Any], zeroed: bool) -> Change:
    return (row[STATUS], row[COUNTED_ON], row[SUSPECT_OF], row[USER], row[TENANT], row[FEATURE], zeroed)


def _apply(row: list[Any], change: Change) -> None:
    row[STATUS], row[COUNTED_ON], row[SUSPECT_OF], row[USER], row[TENANT], row[FEATURE], zeroed = change
    if zeroed:
        row[COSTS : COSTS + N_COSTS] = (_ZERO,) * N_COSTS
