"""The CLI's client for a running collector's HTTP API (``report``, ``budget``)."""

from __future__ import annotations

import json
import os
import ssl
import urllib.error
import urllib.request
from typing import Any

from .storage import StorageTarget, owner_note

__all__ = ["TOKEN_ENV", "ApiError", "call_api", "running_api"]

#: Bearer token the CLI sends to a collector's API when auth is on.
TOKEN_ENV = "OTEL_COSTS_TOKEN"


class ApiError(Exception):
    """The collector answered with an error (``status``) or did not answer (``status`` None)."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


def call_api(url: str, method: str, path: str, body: Any = None, cafile: str | None = None,
             timeout: float = 60) -> Any:
    """JSON in, JSON out. Sends ``OTEL_COSTS_TOKEN`` when set. Raises ApiError."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"} if data else {})
    token = os.environ.get(TOKEN_ENV)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    context = ssl.create_default_context(cafile=cafile) if cafile else None
    try:
        with urllib.request.urlopen(request, timeout=timeout, context=context) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        try:
            message = json.loads(exc.read()).get("error", str(exc))
        except ValueError:
            message = str(exc)
        raise ApiError(f"collector at {url} answered {exc.code}: {message}", exc.code) from None
    except OSError as exc:
        raise ApiError(f"a collector holds this storage but {url} is not answering: {exc}") from None


def running_api(target: StorageTarget) -> tuple[str, str | None] | None:
    """(url, CA file) of the running collector that holds this embedded storage, if any:
    chDB allows one process, so the CLI must go through it. None for a server."""
    if target.kind != "chdb":
        return None
    note = owner_note(target.location)
    return (str(note["url"]), note.get("cafile")) if note is not None else None
