"""OTLP/HTTP receiver (``POST /v1/traces``, protobuf or JSON, gzip or not), plus
``GET /healthz`` and ``GET /metrics``, on aiohttp.

Answers per the OTLP spec: 200 with ``partial_success`` for rejected spans; 400 for a
body that cannot be parsed (not retryable); 413 over the size limit; 415 for another
content type; 503 with ``Retry-After`` when the queue is full or ClickHouse is down.
The response uses the request's encoding.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from typing import Any, Callable

from aiohttp import ClientPayloadError, web
from aiohttp.web_protocol import RequestPayloadError
from google.protobuf import json_format
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from otel_costs import __version__
from otel_costs_collector.auth import TokenAuth
from otel_costs_collector.mapping import otlp
from otel_costs_collector.mapping.rows import span_count
from otel_costs_collector.metrics import Metrics
from otel_costs_collector.receive.ingest import Ingest, NotStored, Overloaded

__all__ = ["build_app", "parse_otlp_json"]

_log = logging.getLogger("otel_costs.collector")
PROTOBUF = "application/x-protobuf"
JSON = "application/json"
_RETRY_AFTER_S = "1"
_ID_FIELDS = ("traceId", "spanId", "parentSpanId")


class BadRequest(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def parse_otlp_json(body: bytes) -> ExportTraceServiceRequest:
    """OTLP/JSON → proto. OTLP JSON differs from protobuf's JSON mapping in one way that
    matters: trace and span ids are hex, not base64. Raises BadRequest."""
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(400, f"body is not JSON: {exc}") from None
    except RecursionError:
        raise BadRequest(400, "body is nested too deeply") from None
    if not isinstance(doc, dict):
        raise BadRequest(400, "body must be a JSON object")
    try:
        for rs in doc.get("resourceSpans") or ():
            for ss in rs.get("scopeSpans") or ():
                for span in ss.get("spans") or ():
                    _hex_ids_to_base64(span)
                    for link in span.get("links") or ():
                        _hex_ids_to_base64(link)
        return json_format.ParseDict(doc, ExportTraceServiceRequest(), ignore_unknown_fields=True)
    except (json_format.ParseError, AttributeError, TypeError, ValueError) as exc:
        raise BadRequest(400, f"not an OTLP ExportTraceServiceRequest: {exc}") from None
    except RecursionError:  # attribute values (kvlists, arrays) nested past the limit
        raise BadRequest(400, "not an OTLP ExportTraceServiceRequest: values nested too deeply") from None


def _hex_ids_to_base64(obj: dict[str, Any]) -> None:
    for name in _ID_FIELDS:
        value = obj.get(name)
        if isinstance(value, str) and value:
            try:
                obj[name] = base64.b64encode(bytes.fromhex(value)).decode()
            except ValueError:
                raise BadRequest(400, f"{name} {value[:40]!r} is not hex") from None


async def _read(request: web.Request, encoding: str, limit: int, timeout_s: float) -> bytes:
    """The body, inflated, within ``timeout_s`` seconds. Raises BadRequest."""
    # aiohttp inflates gzip/deflate bodies as it reads them and stops at client_max_size
    # (the limit + 1) of *inflated* bytes, which also defuses gzip bombs.
    try:
        async with asyncio.timeout(timeout_s):
            body = await request.read()
    except TimeoutError:
        raise BadRequest(408, f"the body did not arrive within {timeout_s:g} s") from None
    except web.HTTPRequestEntityTooLarge:
        raise BadRequest(413, f"body is over the {limit}-byte limit") from None
    except (web.HTTPBadRequest, ClientPayloadError, RequestPayloadError) as exc:
        raise BadRequest(400, f"bad {encoding or 'request'} body: {exc}") from None
    if len(body) > limit:  # client_max_size lets one byte more through
        raise BadRequest(413, f"body is over the {limit}-byte limit")
    return body


def build_app(
    ingest: Ingest,
    metrics: Metrics,
    max_request_bytes: int,
    problems: Callable[[], list[str]] = lambda: [],
    auth: TokenAuth | None = None,
    body_timeout_s: float = 30,
) -> web.Application:
    """The OTLP/HTTP app. A body must arrive within ``body_timeout_s`` seconds (408)."""

    async def traces(request: web.Request) -> web.Response:
        kind = (request.content_type or "").lower()
        as_json = kind == JSON
        tenant = None
        if auth is not None:
            principal = auth.check(request.headers.get("Authorization"))
            if principal is None:
                metrics.requests_failed.labels("401").inc()
                return _status(401, "missing or unknown bearer token", as_json, {"WWW-Authenticate": "Bearer"})
            tenant = principal.tenant
        try:
            if kind not in (PROTOBUF, JSON):
                raise BadRequest(415, f"content type must be {PROTOBUF} or {JSON}, got {kind or 'none'}")
            if request.content_length is not None and request.content_length > max_request_bytes:
                raise BadRequest(413, f"body is over the {max_request_bytes}-byte limit")
            encoding = request.headers.get("Content-Encoding", "").lower()
            if encoding not in ("", "identity", "gzip", "deflate"):
                raise BadRequest(415, f"content encoding {encoding!r} is not supported (use gzip)")
            # Held before the body is read: a chunked body may be as large as the limit.
            held = request.content_length if request.content_length is not None else max_request_bytes
            ingest.request_bytes.reserve(held)  # raises Overloaded: 503
            try:
                body = await _read(request, encoding, max_request_bytes, body_timeout_s)
                ingest.request_bytes.adjust(len(body) - held)  # inflated, or shorter than reserved
                held = len(body)
                if as_json:
                    parsed = parse_otlp_json(body)
                    body = parsed.SerializeToString()
                else:
                    try:
                        parsed = otlp.parse(body)  # as the mapping will read it
                    except DecodeError as exc:
                        raise BadRequest(400, f"body is not an OTLP protobuf message: {exc}") from None
                spans = span_count(parsed)
                del parsed  # only the bytes travel on (memory is counted in request bytes)
                outcome = await ingest.handle(body, spans, "http", tenant)
            finally:
                ingest.request_bytes.adjust(-held)
        except BadRequest as exc:
            metrics.requests_failed.labels(str(exc.status)).inc()
            response = _status(exc.status, str(exc), as_json)
            if exc.status in (408, 413):  # the rest of the body is not read: the connection is done
                response.force_close()
            return response
        except (Overloaded, NotStored) as exc:
            metrics.requests_failed.labels("503").inc()
            return _status(503, f"try again later: {exc}", as_json, {"Retry-After": _RETRY_AFTER_S})
        response = ExportTraceServiceResponse()
        if outcome.rejected:
            response.partial_success.rejected_spans = outcome.rejected
            response.partial_success.error_message = outcome.message
        return _message(200, response, as_json)

    async def healthz(request: web.Request) -> web.Response:
        found = problems()
        # "service" tells `otel-costs report` that an otel-costs collector answers here.
        body: dict[str, object] = {
            "status": "unhealthy" if found else "ok",
            "service": "otel-costs",
            "version": __version__,
        }
        if found:
            body["problems"] = found
        return web.json_response(body, status=503 if found else 200)

    async def prometheus(request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(metrics.registry), headers={"Content-Type": CONTENT_TYPE_LATEST})

    # aiohttp refuses bodies over client_max_size with 413 itself; leave room for gzip.
    app = web.Application(client_max_size=max_request_bytes + 1)
    app.router.add_post("/v1/traces", traces)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", prometheus)
    return app


def _message(status: int, message: Any, as_json: bool, headers: dict[str, str] | None = None) -> web.Response:
    if as_json:
        body = json_format.MessageToJson(message, indent=None).encode()
        return web.Response(status=status, body=body, content_type=JSON, headers=headers)
    return web.Response(status=status, body=message.SerializeToString(), content_type=PROTOBUF, headers=headers)


def _status(code: int, text: str, as_json: bool, headers: dict[str, str] | None = None) -> web.Response:
    from google.rpc import status_pb2

    return _message(code, status_pb2.Status(message=text), as_json, headers)
