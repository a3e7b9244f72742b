"""A blocking job run every few seconds on a worker thread, one cycle at a time, from the
collector's event loop (budget evaluation, reconciliation pulls)."""

from __future__ import annotations

import asyncio
import logging
from typing import Callable

__all__ = ["Periodic"]

_log = logging.getLogger("otel_costs.collector")


class Periodic:
    """Runs ``work()`` now and then every ``interval`` seconds, or after the seconds it
    returns when it returns a number (a job asked to wait, e.g. for a provider's
    retry-after; any other result means the interval). ``wake()`` runs it
    early; ``stop()`` lets a cycle in progress finish (it may use storage the caller closes
    next). An exception is logged as ``"<name> failed"`` and the job runs again next cycle.
    Call from the event loop only."""

    def __init__(self, name: str, work: Callable[[], object], interval: float):
        self.name, self._work, self._interval = name, work, interval
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop())

    def wake(self) -> None:
        self._wake.set()

    async def run_now(self) -> object:
        """One cycle, now, in the caller's task (tests, and after a change the job reads);
        raises what the job raises."""
        return await asyncio.to_thread(self._work)

    async def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            await self._task

    async def _loop(self) -> None:
        while not self._stopping:
            wait = self._interval
            try:
                result = await asyncio.to_thread(self._work)
                if isinstance(result, (int, float)) and not isinstance(result, bool):
                    wait = min(float(result), self._interval)
            except Exception as exc:  # storage hiccup: next cycle
                _log.error("%s failed: %s", self.name, exc)
            try:
                await asyncio.wait_for(self._wake.wait(), wait)
            except asyncio.TimeoutError:
                pass
            self._wake.clear()
