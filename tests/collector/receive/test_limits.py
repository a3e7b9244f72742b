"""Limits that keep one client from taking the collector: memory held for requests (in
bytes), body sizes however they are sent, slow or idle connections, and a cap on them."""

from __future__ import annotations

import gzip
import socket
import threading
import time

import grpc
import httpx
import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc

from otel_costs_collector.config import HELD_COPIES

from ..spans import SEMCONV, sdk_request

PROTO = {"Content-Type": "application/x-protobuf"}
MIB = 1 << 20


def padded(size: int) -> bytes:
    """An OTLP request of about ``size`` bytes: one GenAI span with a long prompt."""
    body = sdk_request([dict(SEMCONV, **{"gen_ai.input.messages": "x" * size})]).SerializeToString()
    assert size <= len(body) < size + 4096
    return body


def wait_for(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def raw_connection(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=10)


def read_all(sock: socket.socket, timeout: float) -> bytes:
    """What the server sends until it closes the connection (or ``timeout`` passes)."""
    sock.settimeout(timeout)
    out = b""
    try:
        while chunk := sock.recv(65536):
            out += chunk
    except socket.timeout:
        out += b"<still open>"
    return out


def test_request_memory_is_bounded_in_bytes_over_http(start_collector):
    c = start_collector(max_request_bytes=MIB, max_inflight_bytes=HELD_COPIES * MIB + MIB)
    held = c.collector.metrics.request_bytes
    body = padded(MIB - 8192)
    # A client sends the headers and half the body of a large request, and stalls: its
    # bytes are held from the moment its headers arrive.
    slow = raw_connection(c.collector.http_port)
    slow.sendall(
        b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body[: len(body) // 2]
    )
    wait_for(lambda: held._value.get() == len(body) * HELD_COPIES)

    r = httpx.post(c.http_url + "/v1/traces", content=padded(MIB // 2), headers=PROTO, timeout=30)
    assert r.status_code == 503 and int(r.headers["Retry-After"]) >= 1
    assert b"OTEL_COSTS_MAX_INFLIGHT_BYTES" in r.content
    small = httpx.post(
        c.http_url + "/v1/traces", content=sdk_request([dict(SEMCONV)]).SerializeToString(), headers=PROTO, timeout=30
    )
    assert small.status_code == 200  # what fits beside it still gets in

    slow.sendall(body[len(body) // 2 :])
    assert read_all(slow, 30).startswith(b"HTTP/1.1 200")
    slow.close()
    wait_for(lambda: held._value.get() == 0)
    r = httpx.post(c.http_url + "/v1/traces", content=padded(MIB // 2), headers=PROTO, timeout=30)
    assert r.status_code == 200
    assert c.query("SELECT count() FROM {db}.genai_spans")[0][0] == 3


def test_request_memory_is_bounded_in_bytes_over_grpc(start_collector):
    release = threading.Event()

    def wrap(write):
        def blocked(batch):
            release.wait(30)
            return write(batch)

        return blocked

    c = start_collector(wrap_write=wrap, max_request_bytes=MIB, max_inflight_bytes=HELD_COPIES * MIB + MIB)
    held = c.collector.metrics.request_bytes
    first: dict = {}
    with grpc.insecure_channel(c.grpc_target) as channel:
        export = trace_service_pb2_grpc.TraceServiceStub(channel).Export
        big = sdk_request([dict(SEMCONV, **{"gen_ai.input.messages": "x" * (MIB - 8192)})])
        waiting = threading.Thread(target=lambda: first.setdefault("r", export(big, timeout=60)))
        waiting.start()
        wait_for(lambda: held._value.get() >= (MIB - 8192) * HELD_COPIES)
        with pytest.raises(grpc.RpcError) as err:
            export(sdk_request([dict(SEMCONV, **{"gen_ai.input.messages": "y" * (MIB // 2)})]), timeout=30)
        assert err.value.code() == grpc.StatusCode.UNAVAILABLE
        assert "google.rpc.retryinfo-bin" in dict(err.value.trailing_metadata())
        release.set()
        waiting.join(60)
    assert not first["r"].HasField("partial_success")
    wait_for(lambda: held._value.get() == 0)


@pytest.mark.parametrize("how", ["chunked", "gzip"])
def test_body_one_byte_over_the_limit_is_refused_however_it_is_sent(start_collector, how):
    c = start_collector(max_request_bytes=64 * 1024)
    body = padded(64 * 1024)[: 64 * 1024 + 1]  # exactly limit + 1 bytes
    assert len(body) == 64 * 1024 + 1
    if how == "gzip":
        r = httpx.post(
            c.http_url + "/v1/traces",
            content=gzip.compress(body),
            headers={**PROTO, "Content-Encoding": "gzip"},
            timeout=30,
        )
    else:
        r = httpx.post(c.http_url + "/v1/traces", content=iter([body[:1000], body[1000:]]), headers=PROTO, timeout=30)
        assert r.request.headers.get("Transfer-Encoding") == "chunked"
    assert r.status_code == 413, r.content
    assert c.collector.metrics.request_bytes._value.get() == 0


@pytest.mark.parametrize("stall", ["headers", "body", "idle"])
def test_slow_or_idle_connections_are_closed(start_collector, stall):
    c = start_collector(connection_timeout_s=1)
    sock = raw_connection(c.collector.http_port)
    if stall == "headers":  # slowloris: a header line every half second, never the end
        sock.sendall(b"POST /v1/traces HTTP/1.1\r\nHost: x\r\n")
        for i in range(4):
            time.sleep(0.5)
            try:
                sock.sendall(f"X-{i}: y\r\n".encode())
            except OSError:
                break
    elif stall == "body":
        sock.sendall(
            b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"
            b"Content-Length: 1000\r\n\r\n" + b"\x0a" * 10
        )
    answer = read_all(sock, 10)  # timeout 1 s: closed well before this
    sock.close()
    assert not answer.endswith(b"<still open>"), answer[:200]
    if stall == "body":
        assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    # the collector still answers others
    assert httpx.get(c.http_url + "/healthz", timeout=10).status_code == 200


def test_connections_past_the_cap_are_refused_and_counted(start_collector):
    c = start_collector(max_connections=16)

    def open_now() -> float:
        return c.collector.metrics.connections.collect()[0].samples[0].value

    held = [raw_connection(c.collector.http_port) for _ in range(16)]
    wait_for(lambda: open_now() == 16)
    extra = raw_connection(c.collector.http_port)
    answer = read_all(extra, 10)
    extra.close()
    assert answer.startswith(b"HTTP/1.1 503") and b"Connection: close" in answer
    assert c.collector.metrics.connections_refused._value.get() == 1
    for sock in held:
        sock.close()
    wait_for(lambda: open_now() == 0)
    assert httpx.get(c.http_url + "/healthz", timeout=10).status_code == 200


def test_config_refuses_a_memory_limit_below_one_largest_request():
    from otel_costs_collector.config import CollectorConfig, ConfigError

    with pytest.raises(ConfigError) as err:
        CollectorConfig(max_request_bytes=16 * MIB, max_inflight_bytes=16 * MIB).validate()
    assert any("max_inflight_bytes" in p and "max_request_bytes" in p for p in err.value.problems)


def test_spans_older_than_the_raw_ttl_are_rejected_from_raw_rows_and_rollups_alike(start_collector):
    from datetime import datetime, timedelta, timezone

    c = start_collector(raw_ttl_days=30)
    now = datetime.now(timezone.utc)
    old = dict(SEMCONV, _start=now - timedelta(days=45))
    recent = dict(SEMCONV, _start=now - timedelta(days=20))
    r = httpx.post(
        c.http_url + "/v1/traces", content=sdk_request([old, recent]).SerializeToString(), headers=PROTO, timeout=30
    )
    assert r.status_code == 200
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

    answer = ExportTraceServiceResponse.FromString(r.content)
    assert answer.partial_success.rejected_spans == 1
    assert "OTEL_COSTS_RAW_TTL_DAYS" in answer.partial_success.error_message
    assert c.query("SELECT count() FROM {db}.genai_spans")[0][0] == 1
    for rollup in ("genai_costs_hourly", "genai_costs_daily"):
        assert c.query(f"SELECT sum(calls) FROM {{db}}.{rollup}")[0][0] == 1, rollup
