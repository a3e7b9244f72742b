"""The stage that stores the calls whose wait for an ancestor's attribution is over
(otel_costs_collector.pipeline.held journals them; otel_costs_collector.mapping.calls decides
when): a thread asks twice a second and writes what is due through the same stages as a
batch's rows (retry, insert)."""

from __future__ import annotations

import logging
import threading
from typing import Callable

from otel_costs_collector.pipeline.held import HeldCalls
from otel_costs_collector.pipeline.types import Rows, Stage, StorageUnavailable

__all__ = ["SETTLE_EVERY_S", "Settling"]

_log = logging.getLogger("otel_costs.collector")
#: Seconds between two looks for calls whose wait is over.
SETTLE_EVERY_S = 0.5


class Settling:
    """``start()`` runs the thread; ``close()`` stops it and stores every call still waiting,
    as it is (what was acknowledged is stored, attributed or not; a crash keeps the journal).
    ``write(rows)`` stores rows through ``inner`` (the thread's own writes go that way).

    ``on_stored(n)`` / ``on_error()`` are called from the thread after each attempt (metrics).
    """

    def __init__(
        self,
        calls: HeldCalls,
        inner: Stage[Rows, None],
        *,
        every: float = SETTLE_EVERY_S,
        on_stored: Callable[[int], None] = lambda n: None,
        on_error: Callable[[], None] = lambda: None,
    ) -> None:
        self._calls = calls
        self._inner = inner
        self._every = every
        self._on_stored = on_stored
        self._on_error = on_error
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="otel-costs-calls", daemon=True)
        self._thread.start()

    def write(self, rows: Rows) -> None:
        """Store ``rows`` (calls whose wait ended) through the inner stages. Raises their errors."""
        self._inner.write(rows)

    def close(self, timeout: float = 10.0) -> None:
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join(timeout)
        self._thread = None
        try:
            stored = self._calls.settle(self.write, everything=True)
        except Exception as exc:
            self._on_error()
            _log.error("calls waiting for attribution stay journaled until the next start: %s", exc)
            return
        self._on_stored(stored)
        if stored:
            _log.info("stopping: stored %d calls that were waiting for attribution", stored)

    def _run(self) -> None:
        failing = False
        while not self._stop.wait(self._every):
            try:
                self._on_stored(self._calls.settle(self.write))
                failing = False
            except Exception as exc:  # storage down, or a bug: the rows stay journaled, tried again
                self._on_error()
                if not failing:
                    bug = not isinstance(exc, (StorageUnavailable, OSError))  # a traceback for a bug of ours
                    _log.error(
                        "storing calls that waited for attribution failed: %s", exc, exc_info=exc if bug else None
                    )
                failing = True
