"""Prometheus metrics, served at ``GET /metrics`` on the HTTP port. One registry per
collector, so several collectors (tests) in one process do not clash."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["Metrics"]


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.spans_received = Counter(
            "otel_costs_spans_received", "Spans received, by receiver.", ["receiver"], registry=r
        )
        self.spans_non_genai = Counter("otel_costs_spans_dropped_non_genai", "Spans dropped as not GenAI.", registry=r)
        self.pipeline_bugs = Counter(
            "otel_costs_pipeline_bugs",
            "Writes that failed with an error in otel-costs itself (logged with its traceback; the batch is kept).",
            registry=r,
        )
        self.spans_repeated = Counter(
            "otel_costs_spans_repeated",
            "Spans stored once although a request held them more than once (same trace and span id).",
            registry=r,
        )
        self.spans_rejected = Counter("otel_costs_spans_rejected", "Spans rejected as invalid.", registry=r)
        self.spans_duplicate = Counter(
            "otel_costs_spans_duplicate",
            "GenAI spans of retried requests that were already stored (answered, not stored again).",
            registry=r,
        )
        self.spans_written = Counter(
            "otel_costs_spans_written",
            "GenAI span rows written to ClickHouse (spooled ones when their replay writes them).",
            registry=r,
        )
        self.requests_failed = Counter(
            "otel_costs_requests_failed", "Requests answered with an error, by reason.", ["reason"], registry=r
        )
        self.batch_seconds = Histogram(
            "otel_costs_batch_write_seconds",
            "Time to write one batch.",
            registry=r,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        self.batch_spans = Histogram(
            "otel_costs_batch_spans",
            "Spans per written batch.",
            registry=r,
            buckets=(1, 10, 100, 1000, 5000, 10000, 50000, 100000),
        )
        self.write_errors = Counter("otel_costs_write_errors", "Failed batch writes.", registry=r)
        self.queue_spans = Gauge("otel_costs_queue_spans", "Spans waiting to be written.", registry=r)
        self.spool_spans = Counter(
            "otel_costs_spool_spans",
            "Spans through the disk spool, by event (spooled, replayed, rejected).",
            ["event"],
            registry=r,
        )
        self.calls_waiting = Gauge(
            "otel_costs_calls_waiting",
            "Calls without a user or tenant waiting for an ancestor span that names them (mapping/calls.py).",
            registry=r,
        )
        self.calls_settled = Counter(
            "otel_costs_calls_settled",
            "Calls stored after their wait for an ancestor's attribution ended (pipeline/settling.py).",
            registry=r,
        )
        self.calls_settle_errors = Counter(
            "otel_costs_calls_settle_errors",
            "Failed stores of calls whose wait ended (they stay journaled and are tried again).",
            registry=r,
        )
        self.calls_suspected = Gauge(
            "otel_costs_calls_suspected_double",
            "Calls stored below another call that "
            "also carries a cost, which the counting rules could not pair, since the "
            "collector started (suspect_of in genai_spans).",
            registry=r,
        )
        self.billed_facts_lost = Gauge(
            "otel_costs_billed_facts_lost",
            "Spans counted on another span stored before they came, whose billed facts (tier, "
            "web searches, ...) that span lacks, since the collector started (pricing_error says which).",
            registry=r,
        )
        self.spool_oldest = Gauge(
            "otel_costs_spool_oldest_seconds",
            "How long the oldest spooled batch has waited for storage (0: the spool is empty).",
            registry=r,
        )
        self.request_bytes = Gauge(
            "otel_costs_request_bytes_in_flight",
            "Bytes of OTLP requests being received, queued or written (limit: otel_costs_request_bytes_limit).",
            registry=r,
        )
        self.request_bytes_limit = Gauge(
            "otel_costs_request_bytes_limit",
            "Request bytes in flight past which "
            "requests are answered 503 / UNAVAILABLE (OTEL_COSTS_MAX_INFLIGHT_BYTES).",
            registry=r,
        )
        self.connections = Gauge("otel_costs_http_connections", "Open connections on the HTTP port.", registry=r)
        self.connections_refused = Counter(
            "otel_costs_connections_refused",
            "Connections closed at once because the HTTP port had OTEL_COSTS_MAX_CONNECTIONS open.",
            registry=r,
        )
        self.spool_bytes = Gauge("otel_costs_spool_bytes", "Bytes held in the disk spool.", registry=r)
        self.anomalies = Gauge(
            "otel_costs_anomalies",
            "Cost anomalies whose window started in the last day, by scope kind (total, feature, tenant, model).",
            ["kind"],
            registry=r,
        )
        self.capture_rate = Gauge(
            "otel_costs_capture_rate",
            "Tracked / billed cost of the last complete UTC day the provider billed (reconcile/).",
            ["provider"],
            registry=r,
        )

    def flushed(self, spans: int, seconds: float, error: BaseException | None) -> None:
        self.batch_seconds.observe(seconds)
        if error is None:
            self.batch_spans.observe(spans)
        else:
            self.write_errors.inc()
