"""The CLI's client for a running collector's HTTP API (``report``, ``budget``); where to
read from is :mod:`source`."""

from __future__ import annotations

import json
import os
import shutil
import ssl
import urllib.error
import urllib.request
from typing import IO, Any

__all__ = ["TOKEN_ENV", "ApiError", "call_api"]

#: Bearer token the CLI sends to a collector's API when auth is on.
TOKEN_ENV = "OTEL_COSTS_TOKEN"


class ApiError(Exception):
    """The collector answered with an error (``status``) or did not answer (``status`` None)."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


def call_api(
    url: str,
    method: str,
    path: str,
    body: Any = None,
    cafile: str | None = None,
    timeout: float = 60,
    into: IO[bytes] | None = None,
) -> Any:
    """JSON in, JSON out — or, with ``into``, the answer's bytes copied into it (a file, in
    chunks). Sends ``OTEL_COSTS_TOKEN`` when set. Raises ApiError."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        url + path, data=data, method=method, headers={"Content-Type": "application/json"} if data else {}
    )
    token = os.environ.get(TOKEN_ENV)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        context = ssl.create_default_context(cafile=cafile) if cafile else None
    except (OSError, ValueError) as exc:
        raise ApiError(f"cannot use CA file {cafile}: {exc}") from None
    try:
        with urllib.request.urlopen(request, timeout=timeout, context=context) as response:
            if into is not None:
                shutil.copyfileobj(response, into, 1 << 20)
                return None
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        try:
            message = json.loads(exc.read()).get("error", str(exc))
        except ValueError:
            message = str(exc)
        raise ApiError(f"collector at {url} answered {exc.code}: {message}", exc.code) from None
    except OSError as exc:
        raise ApiError(f"the collector at {url} is not answering: {getattr(exc, 'reason', exc)}") from None
