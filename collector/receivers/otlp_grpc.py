"""OTLP/gRPC receiver: ``opentelemetry.proto.collector.trace.v1.TraceService/Export``.

Answers per the OTLP spec: success with ``partial_success`` for rejected spans (the client
must not retry those); UNAVAILABLE with retry info when the queue is full or ClickHouse
is down (a retry can help); RESOURCE_EXHAUSTED without retry info when a request is over
the size limit (grpcio enforces ``max_receive_message_length``).
"""

from __future__ import annotations

import logging

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

from ..ingest import Ingest, Overloaded, StorageUnavailable

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
    return (("google.rpc.retryinfo-bin", retry.SerializeToString()),
            ("grpc-status-details-bin", status.SerializeToString()))


class TraceService(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self, ingest: Ingest):
        self._ingest = ingest

    async def Export(self, request, context):  # noqa: N802 (gRPC method name)
        try:
            outcome = await self._ingest.handle(request, "grpc")
        except (Overloaded, StorageUnavailable) as exc:
            message = f"try again later: {exc}"
            await context.abort(grpc.StatusCode.UNAVAILABLE, message,
                                trailing_metadata=_retry_metadata(_RETRY_AFTER_S, message))
        response = trace_service_pb2.ExportTraceServiceResponse()
        if outcome.rejected:
            response.partial_success.rejected_spans = outcome.rejected
            response.partial_success.error_message = outcome.message
        return response


async def start_grpc(ingest: Ingest, host: str, port: int, max_request_bytes: int) -> tuple[grpc.aio.Server, int]:
    """Start serving; returns the server and the bound port. Raises if the port is taken."""
    server = grpc.aio.server(options=[
        ("grpc.max_receive_message_length", max_request_bytes),
        ("grpc.so_reuseport", 0),
    ])
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(TraceService(ingest), server)
    bound = server.add_insecure_port(f"{host}:{port}")
    if not bound:
        raise OSError(f"cannot listen for gRPC on {host}:{port}")
    await server.start()
    return server, bound
