"""A full queue is answered with retry advice, never by growing or dropping silently."""

from __future__ import annotations

import threading

import grpc
import httpx
from google.rpc import error_details_pb2, status_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc

from ..spans import SEMCONV, sdk_request

PROTO = {"Content-Type": "application/x-protobuf"}


def test_full_queue_gives_unavailable_with_retry_info_then_503(start_collector):
    # The first request's rows wait (long age, high row threshold) and fill the queue.
    c = start_collector(batch_max_age_ms=30_000, batch_min_rows=1_000_000, max_queued_rows=10)
    first: dict = {}
    waiting = threading.Thread(
        target=lambda: first.setdefault(
            "r",
            httpx.post(
                c.http_url + "/v1/traces",
                content=sdk_request([dict(SEMCONV)] * 6).SerializeToString(),
                headers=PROTO,
                timeout=60,
            ),
        )
    )
    waiting.start()
    deadline = 0
    while c.collector.metrics.queue_spans._value.get() < 6 and deadline < 200:
        threading.Event().wait(0.05)
        deadline += 1

    with grpc.insecure_channel(c.grpc_target) as channel:
        try:
            trace_service_pb2_grpc.TraceServiceStub(channel).Export(sdk_request([dict(SEMCONV)] * 6), timeout=10)
            raise AssertionError("expected UNAVAILABLE")
        except grpc.RpcError as err:
            assert err.code() == grpc.StatusCode.UNAVAILABLE
            trailers = dict(err.trailing_metadata())
    retry = error_details_pb2.RetryInfo.FromString(trailers["google.rpc.retryinfo-bin"])
    assert retry.retry_delay.seconds >= 1
    status = status_pb2.Status.FromString(trailers["grpc-status-details-bin"])
    detail = error_details_pb2.RetryInfo()
    assert status.code == 14 and status.details[0].Unpack(detail) and detail.retry_delay.seconds >= 1

    r = httpx.post(
        c.http_url + "/v1/traces", content=sdk_request([dict(SEMCONV)] * 6).SerializeToString(), headers=PROTO
    )
    assert r.status_code == 503 and int(r.headers["Retry-After"]) >= 1

    c.stop()  # a graceful stop flushes the waiting request
    waiting.join(30)
    assert first["r"].status_code == 200
