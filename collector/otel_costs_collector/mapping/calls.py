"""One cost per provider call, for spans from any language, across requests and batches; and
attribution from an ancestor span. The in-memory rule; otel_costs_collector.pipeline.held makes it durable.

The SDK decides as spans end (otel_costs.counting); spans that reach the collector without it
(Node, Go, an OTel Collector) arrive in requests, children usually before parents, but an
exporter may send a call in one request and its outer span seconds later in another.
:class:`CallIndex` remembers the recent spans of each trace (stored rows, and the spans
without usage as :data:`otel_costs_collector.mapping.rows.Link`) and applies the one rule,
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

import time
from decimal import Decimal
from typing import Any, Callable, NamedTuple, Sequence

from otel_costs.counting import NOT_COUNTED, Found, decide, first_same
from otel_costs.pricing import PricingStatus
from otel_costs_collector.mapping.call_holding import Holding
from otel_costs_collector.mapping.call_memory import _COUNTS, _END, _KEY, _START, _TOKEN, _beside, _Carrier, usage_key
from otel_costs_collector.mapping.rows import Link
from otel_costs_collector.storage.columns import (
    COSTS,
    COUNTED_ON,
    DURATION,
    FEATURE,
    N_COSTS,
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
#: How long a call without attribution waits for an ancestor that has it (seconds).
DEFAULT_WAIT_S = 60.0
_ZERO = Decimal(0)

#: What the rule changed on a row: (status, counted_on, suspect_of, user, tenant, feature,
#: costs zeroed). Recorded ahead of the insert (otel_costs_collector.pipeline.held), so a replay applies the
#: same decisions whatever arrived since.
Change = tuple[str, str, str, str, str, str, bool]


class Decided(NamedTuple):
    now: list[list[Any]]  # rows to insert with the batch
    held: list[list[Any]]  # rows that wait for an ancestor (otel_costs_collector.pipeline.held keeps them)
    changes: dict[str, Change]  # span id → what the rule changed on that row of the batch (a replay: as recorded)
    released: list[list[Any]]  # rows of earlier batches this one attributed (due() hands them out)


#: The status of a span sent again in another request after it was stored: not stored again.
DUPLICATE = "duplicate"


class CallIndex(Holding):
    """The rule across batches: ``decide`` a batch's rows; ``due`` the rows whose wait ended.
    Thread-safe: one lock."""

    def __init__(
        self,
        wait_s: float = DEFAULT_WAIT_S,
        *,
        max_nodes: int = 100_000,
        max_held: int = 10_000,
        keep_s: float = 600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(wait_s=wait_s, max_held=max_held, max_nodes=max_nodes, keep_s=max(keep_s, wait_s), clock=clock)
        self.suspects = 0  # rows that count below another counting row (rules did not pair them)

    def decide(
        self, rows: list[list[Any]], links: Sequence[Link], recorded: tuple[dict[str, Change], set[str]] | None = None
    ) -> Decided:
        """Apply the rule to a batch's rows (changed in place) and remember them and its links.

        ``recorded``: the changes and held span ids written ahead for this batch (a replay):
        applied as they are instead of deciding anew.
        """
        now = self._clock()
        changes: dict[str, Change] = {}
        mine: set[str] = set()  # this batch's rows that wait
        touched: set[str] = set()  # traces whose waiting rows may be settled now
        holding = self._holding
        with self._lock:
            if links:
                # Spans without usage of traces with no call seen and none in this batch (most
                # spans of an app's whole traces) only wait as orphans: no order, no walk.
                traces, with_rows = self._traces, {row[TRACE_ID] for row in rows}
                judged = []
                for link in links:
                    if link[0] in traces or link[0] in with_rows:
                        judged.append(link)
                    else:
                        self._orphan(link)
                links = judged
            # Children end first; a row before a span without usage that ends at the same instant.
            items: list[Any] = sorted([*rows, *links], key=_end) if links else sorted(rows, key=_end)
            self._batch_links = {link[0] + link[1]: link[2] for link in links} if links else {}  # (Link's order)
            for item in items:
                if type(item) is not list:
                    if self._link(item, now) and item[0] in holding:
                        touched.add(item[0])
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
                    changes[span_id] = change
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
                changes[span_id] = change
                if row[STATUS] == DUPLICATE:
                    return False
            node = self._remember(me, row, row[STATUS] not in NOT_COUNTED, now)
            if up:
                self._pass_up(up, ((me, node),) if node[_COUNTS] else below)
            return False
        status = row[STATUS]
        key = usage_key(row)
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

    def _change(self, row: list[Any], changes: dict[str, Change], status: str, counted_on: str = "") -> None:
        row[STATUS] = status
        row[COUNTED_ON] = counted_on
        row[COSTS : COSTS + N_COSTS] = (_ZERO,) * N_COSTS
        changes[row[SPAN_ID]] = _state(row, True)


def _end(item: Any) -> int:
    """Sort key: a row's or a link's end (ns), doubled, plus one for a link."""
    if type(item) is list:
        return (item[TIMESTAMP] + item[DURATION]) << 1
    return (item[3] << 1) | 1


def _state(row: list[Any], zeroed: bool) -> Change:
    return (row[STATUS], row[COUNTED_ON], row[SUSPECT_OF], row[USER], row[TENANT], row[FEATURE], zeroed)


def _apply(row: list[Any], change: Change) -> None:
    row[STATUS], row[COUNTED_ON], row[SUSPECT_OF], row[USER], row[TENANT], row[FEATURE], zeroed = change
    if zeroed:
        row[COSTS : COSTS + N_COSTS] = (_ZERO,) * N_COSTS
