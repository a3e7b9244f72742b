"""A loopback HTTP server for the fakes of third-party APIs (tests/fake_billing.py,
tests/fake_stripe.py): GETs go to the subclass's ``_answer(handler)``, JSON answers through
:func:`send_json`."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class LoopbackServer:
    """Serves on 127.0.0.1 (a free port) from construction until ``close()``; ``url`` is its base."""

    def __init__(self) -> None:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                server._answer(self)

            def log_message(self, *args: Any) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self._httpd.server_port}"

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def _answer(self, handler: BaseHTTPRequestHandler) -> None:
        raise NotImplementedError


def send_json(handler: BaseHTTPRequestHandler, status: int, doc: Any, retry_after: float | None = None) -> None:
    data = json.dumps(doc).encode()
    handler.send_response(status)
    handler.send_header("content-type", "application/json")
    handler.send_header("content-length", str(len(data)))
    if retry_after is not None:
        handler.send_header("retry-after", str(retry_after))
    handler.end_headers()
    handler.wfile.write(data)
