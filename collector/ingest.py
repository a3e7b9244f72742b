"""What both receivers do with a parsed request: map it, queue the rows, wait until they
are stored, and say what to answer. The receivers only translate to gRPC/HTTP."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from otel_costs.pricing import Pricer

from .batcher import Batcher, Overloaded
from .dedup import RecentRequests
from .mapping import map_request
from .metrics import Metrics

__all__ = ["Ingest", "Outcome", "StorageUnavailable", "Overloaded"]


class StorageUnavailable(Exception):
    """The batch holding this request's rows could not be written; retry later."""


@dataclass(frozen=True)
class Outcome:
    accepted: int  # GenAI spans stored
    non_genai: int  # spans dropped as not GenAI (accepted, not stored)
    rejected: int  # spans refused as invalid (partial success)
    message: str


class Ingest:
    """Thread-safety: call ``handle`` from the event loop that created this object."""

    def __init__(self, batcher: Batcher, pricer: Pricer, metrics: Metrics, recent: RecentRequests):
        self._batcher = batcher
        self._pricer = pricer
        self._metrics = metrics
        self._recent = recent
        self._in_flight: dict[str, asyncio.Future[None]] = {}

    async def handle(self, request: ExportTraceServiceRequest, receiver: str, tenant: str | None = None) -> Outcome:
        """Store the request's GenAI spans; returns once they are written.

        ``tenant``: store every span under this tenant (the sender's token is bound to it).
        Raises Overloaded (queue full: retry later) or StorageUnavailable (write failed).
        """
        result = map_request(request, self._pricer, tenant)
        m = self._metrics
        m.spans_received.labels(receiver).inc(result.received)
        m.spans_non_genai.inc(result.non_genai)
        m.spans_rejected.inc(result.rejected)
        rows = len(result.rows)
        token = result.token
        if rows and token in self._recent:
            m.spans_duplicate.inc(rows)  # a retry of a request already stored
            rows = 0
        elif rows and token in self._in_flight:
            m.spans_duplicate.inc(rows)  # a retry while the first attempt is queued
            try:
                await asyncio.shield(self._in_flight[token])
            except Exception as exc:
                raise StorageUnavailable(str(exc)) from exc
            rows = 0
        if rows:
            loop = asyncio.get_running_loop()
            stored: asyncio.Future[None] = loop.create_future()

            def done(error: BaseException | None) -> None:
                loop.call_soon_threadsafe(_settle, stored, error)

            self._batcher.submit(result.rows, done)  # raises Overloaded
            m.queue_rows.set(self._batcher.queued_rows)
            self._in_flight[token] = stored
            try:
                await asyncio.shield(stored)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                raise StorageUnavailable(str(exc)) from exc
            finally:
                self._in_flight.pop(token, None)
            self._recent.add((token,))
        message = ""
        if result.rejected:
            message = f"{result.rejected} span(s) rejected: " + "; ".join(result.errors)
        return Outcome(rows, result.non_genai, result.rejected, message)


def _settle(future: asyncio.Future[None], error: BaseException | None) -> None:
    if future.done():
        return
    if error is None:
        future.set_result(None)
    else:
        future.set_exception(error)
