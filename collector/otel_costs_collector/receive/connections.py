"""The HTTP port's listening socket: a cap on open connections, and the open-files limit.

aiohttp closes a connection that has not sent a whole request's headers within its
``keepalive_timeout`` (also the idle time between requests), and the app bounds the time
a body may take; what it lacks is a cap on connections. Without one, a flood of idle or
slow connections takes every file descriptor, after which neither port can accept
(asyncio and grpc core then retry ``accept`` in a loop, logging each failure). Here a
connection past the cap is answered ``503`` with ``Connection: close`` at once and
closed; the gRPC port has grpc core's own cap (otel_costs_collector.receive.otlp_grpc).
"""

from __future__ import annotations

import asyncio
import logging
import resource
import ssl
import time
from typing import Callable

from aiohttp import web

__all__ = ["raise_open_files_limit", "serve_http"]

_log = logging.getLogger("otel_costs.collector")
_REFUSAL = (
    b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Type: text/plain\r\n"
    b"Content-Length: 31\r\nConnection: close\r\n\r\ntoo many connections; try again"
)
#: A refused connection is logged at most this often (seconds).
_LOG_EVERY_S = 10.0


def raise_open_files_limit() -> int:
    """Raise this process's soft open-files limit to its hard limit (as servers do: the
    default soft limit of 1024 is below what two capped ports can hold); returns it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError):
            pass
    return soft


class _Refuse(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.WriteTransport)
        transport.write(_REFUSAL)
        transport.close()


async def serve_http(
    runner: web.AppRunner,
    host: str,
    port: int,
    ssl_context: ssl.SSLContext | None,
    max_connections: int,
    handshake_timeout_s: float,
    on_refused: Callable[[], None] = lambda: None,
) -> asyncio.Server:
    """Listen for ``runner``'s app (already set up). Close the returned server before
    ``runner.cleanup()``. Raises OSError when the port is taken."""
    server = runner.server
    assert server is not None, "runner.setup() first"
    last_log = [0.0]

    def protocol() -> asyncio.BaseProtocol:
        if len(server.connections) >= max_connections:
            on_refused()
            now = time.monotonic()
            if now - last_log[0] >= _LOG_EVERY_S:
                last_log[0] = now
                _log.warning(
                    "HTTP port has %d connections open (OTEL_COSTS_MAX_CONNECTIONS): refusing new ones", max_connections
                )
            return _Refuse()
        return server()

    loop = asyncio.get_running_loop()
    return await loop.create_server(
        protocol,
        host,
        port,
        ssl=ssl_context,
        reuse_address=True,
        ssl_handshake_timeout=handshake_timeout_s if ssl_context else None,
    )
