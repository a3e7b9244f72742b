"""One JSON GET against a billing API (the providers' cost reports, Stripe): blocking, bounded,
and every failure one :class:`BillingApiError` with the HTTP status (None for a network
failure or a body of the wrong shape), the API's own error message, and the seconds it asked
to wait (``Retry-After``, at most an hour). Keys never appear in an error."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from decimal import Decimal
from typing import Any, Mapping

__all__ = ["BillingApiError", "get_json", "TIMEOUT_S", "MAX_BODY"]

TIMEOUT_S = 30.0
MAX_BODY = 32 << 20


class BillingApiError(Exception):
    """``message`` says what went wrong; ``detail`` is the API's own error message ("" if none)."""

    def __init__(self, status: int | None, message: str, detail: str = "", retry_after: float | None = None):
        super().__init__(message)
        self.status, self.detail, self.retry_after = status, detail, retry_after


def get_json(url: str, headers: Mapping[str, str]) -> dict[str, Any]:
    """The JSON object at ``url`` (numbers with a fraction as Decimal). Raises BillingApiError."""
    request = urllib.request.Request(url, headers={"Accept": "application/json", "User-Agent": "otel-costs", **headers})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
            body = response.read(MAX_BODY + 1)
    except urllib.error.HTTPError as exc:
        raise BillingApiError(exc.code, f"HTTP {exc.code}", _error_message(exc), _retry_after(exc.headers)) from None
    except (OSError, ValueError) as exc:  # refused, reset, timed out, bad URL
        raise BillingApiError(None, f"unreachable: {type(exc).__name__}: {exc}") from None
    if len(body) > MAX_BODY:
        raise BillingApiError(None, "unexpected body: larger than 32 MiB")
    try:
        doc = json.loads(body, parse_float=Decimal)
    except (ValueError, RecursionError):
        raise BillingApiError(None, "unexpected body: not JSON") from None
    if not isinstance(doc, dict):
        raise BillingApiError(None, "unexpected body: not a JSON object")
    return doc


def _error_message(exc: urllib.error.HTTPError) -> str:
    """The API's own error message ({"error": {"message": …}}), short, if any."""
    try:
        return str(json.loads(exc.read(65536))["error"]["message"])[:200]
    except Exception:
        return ""


def _retry_after(headers: Any) -> float | None:
    try:
        value = float(headers.get("retry-after"))
    except (TypeError, ValueError):
        return None
    return min(max(value, 0.0), 3600.0)
