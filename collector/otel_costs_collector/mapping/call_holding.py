"""Calls that wait for an ancestor's attribution (otel_costs_collector.mapping.calls): a counting
row with neither user nor tenant is held until the walk up its trace ends — at an attributed
ancestor, whose user, tenant and feature it takes, at the root, or after ``wait_s`` seconds —
then handed out by ``due()`` (otel_costs_collector.pipeline.held journals them). Bounded:
``max_held`` rows."""

from __future__ import annotations

from typing import Any

from otel_costs.counting import NOT_COUNTED
from otel_costs_collector.mapping.call_memory import (
    _COUNTS,
    _FEATURE,
    _MAX_HOPS,
    _PARENT,
    _SEEN,
    _TENANT,
    _USER,
    SpanMemory,
)
from otel_costs_collector.storage.columns import FEATURE, PARENT_ID, SPAN_ID, STATUS, TENANT, TRACE_ID, USER

__all__ = ["Holding"]


class Holding(SpanMemory):
    """The held rows, on top of the spans remembered (whose ancestors they walk)."""

    def __init__(self, *, wait_s: float, max_held: int, **memory: Any) -> None:
        super().__init__(**memory)
        self.wait_s = wait_s
        self.max_held = max_held
        self._holding: dict[str, dict[str, tuple[list[Any], float]]] = {}  # trace → span → (row, deadline)
        self._held = 0
        self._released: list[list[Any]] = []

    @property
    def held_rows(self) -> int:
        return self._held

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
