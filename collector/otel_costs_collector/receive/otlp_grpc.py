"""OTLP/gRPC receiver: ``opentelemetry.proto.collector.trace.v1.TraceService/Export``.

Answers per the OTLP spec: success with ``partial_success`` for rejected spans (the client
must not retry those); UNAVAILABLE with retry info when the queue is full or ClickHouse
is down (a retry can help); RESOURCE_EXHAUSTED without retry info when a request is over
the size limit (grpcio enforces ``max_receive_message_length``); INVALID_ARGUMENT for
bytes that are not an ExportTraceServiceRequest (parsed here, not by grpcio, which would
answer UNKNOWN and log a traceback per malformed message).
"""

from __future__ import annotations

import logging
from typing import Any

import grpc
from google.protobuf import any_pb2
from google.protobuf.message import DecodeError
from google.rpc import code_pb2, error_details_pb2, status_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

from otel_costs_collector.auth import TokenAuth
from otel_costs_collector.mapping import otlp
from otel_costs_collector.mapping.rows import span_count
from otel_costs_collector.receive.ingest import Ingest, NotStored, Overloaded

__all__ = ["TraceService", "start_grpc"]

_log = logging.getLogger("otel_costs.collector")
_RETRY_AFTER_S = 1


def _retry_metadata(seconds: int, message: str) -> tuple[tuple[str, bytes], ...]:
    """Retry advice in both places clients look: ``google.rpc.retryinfo-bin`` (read by the
    Python OTLP exporter) and the RetryInfo detail of ``grpc-status-details-bin`` (read by
    Go and Java clients)."""
    retry = error_details_pb2.RetryInfo()
    retry.retry_delay.seconds = seconds
    detail = any_pb2.Any()
    detail.Pack(retry)
    status = status_pb2.Status(code=code_pb2.UNAVAILABLE, message=message, details=[detail])
    return (
        ("google.rpc.retryinfo-bin", retry.SerializeToString()),
        ("grpc-status-details-bin", status.SerializeToString()),
    )


_SERVICE = "opentelemetry.proto.collector.trace.v1.TraceService"


class TraceService:
    """The TraceService, taking the request's bytes (see the module docstring)."""

    def __init__(self, ingest: Ingest, auth: TokenAuth | None = None):
        self._ingest = ingest
        self._auth = auth

    def handler(self) -> grpc.GenericRpcHandler:
        # Served as stream-unary (the same on the wire as the unary call clients make), so the
        # message is read only once the call is admitted: a full request-bytes budget refuses
        # a call before grpcio has read its body into memory.
        return grpc.method_handlers_generic_handler(
            _SERVICE,
            {
                "Export": grpc.stream_unary_rpc_method_handler(
                    self._admit,
                    request_deserializer=None,
                    response_serializer=trace_service_pb2.ExportTraceServiceResponse.SerializeToString,
                )
            },
        )

    async def _admit(
        self, messages: Any, context: grpc.aio.ServicerContext
    ) -> trace_service_pb2.ExportTraceServiceResponse:
        held = self._ingest.request_bytes
        if held.held >= held.limit:
            await self._unavailable(
                context,
                Overloaded(
                    f"requests in flight hold {held.held} bytes; limit {held.limit} (OTEL_COSTS_MAX_INFLIGHT_BYTES)"
                ),
            )
        body = None
        async for message in messages:
            if body is not None:
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "Export takes one request message")
            body = message
        if body is None:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "no request message")
            raise AssertionError("abort raises")
        return await self.export(body, context)

    async def export(
        self, body: bytes, context: grpc.aio.ServicerContext
    ) -> trace_service_pb2.ExportTraceServiceResponse:
        tenant = None
        if self._auth is not None:
            metadata = {k: v for k, v in (context.invocation_metadata() or ()) if isinstance(v, str)}
            principal = self._auth.check(metadata.get("authorization"))
            if principal is None:
                await context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or unknown bearer token")
                raise AssertionError("abort raises")
            tenant = principal.tenant
        held = self._ingest.request_bytes
        try:
            held.reserve(len(body))
        except Overloaded as exc:
            await self._unavailable(context, exc)
        try:
            try:
                spans = span_count(otlp.parse(body))  # as the mapping will read it
            except DecodeError as exc:
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"not an OTLP ExportTraceServiceRequest: {exc}")
            try:
                outcome = await self._ingest.handle(body, spans, "grpc", tenant)
            except (Overloaded, NotStored) as exc:
                await self._unavailable(context, exc)
        finally:
            held.adjust(-len(body))
        response = trace_service_pb2.ExportTraceServiceResponse()
        if outcome.rejected:
            response.partial_success.rejected_spans = outcome.rejected
            response.partial_success.error_message = outcome.message
        return response

    @staticmethod
    async def _unavailable(context: grpc.aio.ServicerContext, exc: Exception) -> None:
        message = f"try again later: {exc}"
        await context.abort(
            grpc.StatusCode.UNAVAILABLE, message, trailing_metadata=_retry_metadata(_RETRY_AFTER_S, message)
        )


#: A connection without a call for this long is closed (clients reconnect when they need to).
IDLE_S = 300


async def start_grpc(
    ingest: Ingest,
    host: str,
    port: int,
    max_request_bytes: int,
    auth: TokenAuth | None = None,
    tls: tuple[bytes, bytes] | None = None,
    *,
    max_connections: int = 1024,
    handshake_timeout_s: float = 30,
) -> tuple[grpc.aio.Server, int]:
    """Start serving; returns the server and the bound port. Raises if the port is taken.
    ``tls`` is (certificate chain PEM, private key PEM). Past ``max_connections`` open
    connections new ones are refused (grpc core), so a flood of them cannot take every
    file descriptor; a connection must finish its handshake in ``handshake_timeout_s``."""
    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", max_request_bytes),
            ("grpc.so_reuseport", 0),
            ("grpc.max_allowed_incoming_connections", max_connections),
            ("grpc.server_handshake_timeout_ms", int(handshake_timeout_s * 1000)),
            ("grpc.max_connection_idle_ms", IDLE_S * 1000),
        ]
    )
    server.add_generic_rpc_handlers((TraceService(ingest, auth).handler(),))
    if tls is not None:
        credentials = grpc.ssl_server_credentials([(tls[1], tls[0])])
        bound = server.add_secure_port(f"{host}:{port}", credentials)
    else:
        bound = server.add_insecure_port(f"{host}:{port}")
    if not bound:
        raise OSError(f"cannot listen for gRPC on {host}:{port}")
    await server.start()
    return server, bound
