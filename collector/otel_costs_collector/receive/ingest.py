"""What both receivers do with a request: queue it, wait until it is stored, and say what
to answer. The receivers only translate to gRPC/HTTP.

A request travels as received (its bytes, a batch-file record): the batch writer maps it
and reports each request's :class:`Outcome`. Its token is a hash of those bytes and the
forced tenant, so an exporter's retry is recognised and answered without storing twice.
"""

from __future__ import annotations

import asyncio
from typing import Callable

from otel_costs.pricing import Pricer
from otel_costs_collector.config import HELD_COPIES
from otel_costs_collector.mapping import otlp
from otel_costs_collector.mapping.rows import map_request, oldest_ns
from otel_costs_collector.metrics import Metrics
from otel_costs_collector.pipeline import batch_file
from otel_costs_collector.pipeline.batcher import Batcher, Overloaded
from otel_costs_collector.pipeline.types import Outcome
from otel_costs_collector.receive.dedup import RecentRequests

__all__ = ["Ingest", "Outcome", "RequestBytes", "NotStored", "Overloaded"]


class NotStored(Exception):
    """The batch holding this request was neither stored nor spooled: the sender retries later
    (gRPC UNAVAILABLE, HTTP 503)."""


class RequestBytes:
    """Memory held for requests being received, queued or written, against a limit in
    bytes, whatever the span count: each request counts :data:`HELD_COPIES` times its size.
    A receiver reserves a request before it reads the body (HTTP) or as it takes the
    message (gRPC) and releases it once the request is answered; a reservation past the
    limit raises :class:`Overloaded` (the client retries later), except when nothing else
    is held, so any request up to the size limit gets through alone.

    Thread-safety: the event loop's thread only (both receivers run on it).
    """

    def __init__(self, limit: int, on_change: Callable[[int], None] = lambda held: None):
        self.limit = limit
        self.held = 0
        self._on_change = on_change

    def reserve(self, size: int) -> None:
        """Hold a request of ``size`` bytes. Raises Overloaded."""
        if self.held and self.held + size * HELD_COPIES > self.limit:
            raise Overloaded(
                f"requests in flight hold {self.held} bytes; limit {self.limit} (OTEL_COSTS_MAX_INFLIGHT_BYTES)"
            )
        self.adjust(size)

    def adjust(self, size: int) -> None:
        """Hold a request ``size`` bytes larger (smaller when negative), whatever the limit:
        a body turned out larger or smaller than reserved (chunked, compressed), or a release."""
        self.held += size * HELD_COPIES
        self._on_change(self.held)


class Ingest:
    """Thread-safety: call ``handle`` from the event loop that created this object."""

    def __init__(
        self,
        batcher: Batcher,
        pricer: Pricer,
        metrics: Metrics,
        recent: RecentRequests,
        max_inflight_bytes: int,
        raw_ttl_days: int | None = None,
    ):
        """``raw_ttl_days``: a retry is answered as the first attempt was (older spans rejected)."""
        self._raw_ttl_days = raw_ttl_days
        self.request_bytes = RequestBytes(max_inflight_bytes, metrics.request_bytes.set)
        metrics.request_bytes_limit.set(max_inflight_bytes)
        self._batcher = batcher
        self._pricer = pricer
        self._metrics = metrics
        self._recent = recent
        self._in_flight: dict[str, asyncio.Future[Outcome]] = {}

    async def handle(self, body: bytes, spans: int, receiver: str, tenant: str | None = None) -> Outcome:
        """Store the request's GenAI spans; returns once they are written.

        ``body``: the request's protobuf bytes (as received, or serialised from JSON), which
        the receiver has parsed (and dropped: only the bytes travel on); ``spans``: how many
        spans it holds. ``tenant``: store every span under this tenant (the sender's token is
        bound to it). Raises Overloaded (queue full: retry later) or NotStored
        (write failed).
        """
        if not spans:
            return Outcome(0, 0, 0, 0)
        m = self._metrics
        token = batch_file.request_token(body, tenant)
        if token in self._recent:
            # A retry of a request already stored: answer as the first time, store nothing.
            outcome = await asyncio.to_thread(self._assess, body, tenant)
            m.spans_duplicate.inc(outcome.accepted)
        elif token in self._in_flight:
            try:  # a retry while the first attempt is queued
                outcome = await asyncio.shield(self._in_flight[token])
            except Exception as exc:
                raise NotStored(str(exc)) from exc
            m.spans_duplicate.inc(outcome.accepted)
        else:
            outcome = await self._store(batch_file.Record(body, tenant, token), spans)
            if not outcome.spooled:  # spooled rows are counted when the replay writes them
                m.spans_written.inc(outcome.accepted)
        m.spans_received.labels(receiver).inc(outcome.received)
        m.spans_non_genai.inc(outcome.non_genai)
        m.spans_rejected.inc(outcome.rejected)
        m.spans_repeated.inc(outcome.repeated)
        return outcome

    async def _store(self, record: batch_file.Record, spans: int) -> Outcome:
        loop = asyncio.get_running_loop()
        stored: asyncio.Future[Outcome] = loop.create_future()

        def done(outcome: Outcome | None, error: BaseException | None) -> None:
            loop.call_soon_threadsafe(_settle, stored, outcome, error)

        self._batcher.submit(record, spans, done)  # raises Overloaded
        self._metrics.queue_spans.set(self._batcher.queued_rows)
        self._in_flight[record.request_token] = stored
        try:
            outcome = await asyncio.shield(stored)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            raise NotStored(str(exc)) from exc
        finally:
            self._in_flight.pop(record.request_token, None)
        self._recent.add((record.request_token,))
        return outcome

    def _assess(self, body: bytes, tenant: str | None) -> Outcome:
        return Outcome.of(
            map_request(
                otlp.parse(body),
                self._pricer,
                tenant,
                oldest_ns=oldest_ns(self._raw_ttl_days),
            )
        )


def _settle(future: asyncio.Future[Outcome], outcome: Outcome | None, error: BaseException | None) -> None:
    if future.done():
        return
    if error is None:
        assert outcome is not None
        future.set_result(outcome)
    else:
        future.set_exception(error)
