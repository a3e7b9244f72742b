"""What the one-cost-per-call rule remembers of recent spans (otel_costs_collector.mapping.calls):
each span as a flat tuple keyed by trace and span id, the calls passed up to an ancestor that
has not arrived, the spans without usage of traces with no call yet, and the counting calls by
response id and by usage; bounded in count and age. Not thread-safe: the caller holds ``_lock``.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import Any, Callable

from otel_costs.counting import NOT_COUNTED
from otel_costs.pricing import PricingStatus
from otel_costs_collector.mapping.rows import Link
from otel_costs_collector.storage.columns import (
    CACHE_READ,
    CACHE_WRITE,
    DURATION,
    FEATURE,
    INPUT,
    OUTPUT,
    PARENT_ID,
    REQUEST_TOKEN,
    SCOPE,
    STATUS,
    TENANT,
    TIMESTAMP,
    TRACE_ID,
    USER,
)

__all__ = ["SpanMemory", "usage_key"]

_INVALID_USAGE = PricingStatus.INVALID_USAGE.value
_MAX_HOPS = 64  # how far up a trace a walk goes (a deeper chain is not a real trace)

# A remembered span, keyed by trace id + span id (hex): a tuple of atoms, so the garbage
# collector untracks it. _KEY is the usage (None for a span without usage).
# _TOKEN: the request that brought it ("" for a link), to tell a replay from a resend.
# _SCOPE: the instrumentation scope that made it.
_PARENT, _START, _END, _KEY, _COUNTS, _USER, _TENANT, _FEATURE, _SEEN, _TOKEN, _SCOPE = range(11)
#: A call passed up to an ancestor: (its trace+span key, its node).
_Carrier = tuple


def usage_key(row: list[Any]) -> tuple[int, int, int, int] | None:
    """A row's usage as the rule compares it; None when its usage is invalid."""
    if row[STATUS] == _INVALID_USAGE:
        return None
    return (row[INPUT], row[CACHE_READ], row[CACHE_WRITE], row[OUTPUT])


class SpanMemory:
    """The spans remembered: at most ``max_nodes``, each for ``keep_s`` seconds of ``clock``."""

    def __init__(self, *, max_nodes: int, keep_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_nodes = max_nodes
        self.keep_s = keep_s
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
        self._batch_links: dict[str, str] = {}  # while a batch is judged: its links' parents

    @property
    def remembered(self) -> int:
        """Spans remembered now (at most ``max_nodes``)."""
        return len(self._nodes)

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

    def _link(self, link: Link, now: float) -> bool:
        """Remember a span without usage of a trace with a call; True when remembered."""
        trace_id, span_id, parent, end, user, tenant, feature = link
        if trace_id not in self._traces:
            self._orphan(link)
            return False
        me = trace_id + span_id
        if me in self._nodes:
            return False
        self._nodes[me] = (parent, 0, end, None, False, user, tenant, feature, now, "", "")
        below = self._below.pop(me, None) if self._below else None
        if below and parent:
            self._pass_up(trace_id + parent, below)
        return True

    def _orphan(self, link: Link) -> None:
        """A span without usage of a trace with no call seen yet: most such spans belong to
        traces without any, but an exporter may send an ancestor before the call below it.
        Kept briefly, bounded."""
        if self._orphan_count >= self.max_nodes // 2:
            _, dropped = self._orphans.popitem(last=False)
            self._orphan_count -= len(dropped)
        self._orphans.setdefault(link[0], []).append(link)
        self._orphan_count += 1

    def _adopt(self, trace_id: str, now: float) -> None:
        links = self._orphans.pop(trace_id)
        self._orphan_count -= len(links)
        for link in links:
            self._link(link, now)

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

    def _remember(self, me: str, row: list[Any], counts: bool, now: float) -> tuple:
        start = row[TIMESTAMP]
        key = usage_key(row)
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
