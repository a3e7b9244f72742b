"""A loopback fake of Stripe's API, in the shapes its API reference documents: list objects
(``{"object": "list", "data": [...], "has_more": …, "url": …}``) paged by ``limit`` and
``starting_after``, a ``Bearer`` secret or restricted key, errors as
``{"error": {"type": …, "message": …}}`` and 429 with ``Retry-After``.

Serves ``/v1/customers``, ``/v1/products``, ``/v1/invoices`` (``created[gte]``; each invoice
embeds its first ``embedded_lines`` lines with ``has_more``), ``/v1/invoices/{id}/lines``,
``/v1/credit_notes`` and ``/v1/credit_notes/{id}/lines``. ``page`` caps a page's size (to force
several pages whatever ``limit`` asks). ``fail`` is a list of answers to give instead, in turn:
an HTTP status or (status, retry-after seconds). ``requests`` records (path, query) of each."""

from __future__ import annotations

from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlparse

from tests.loopback import LoopbackServer, send_json

KEY = "rk_test_otelcosts_restricted"


class FakeStripe(LoopbackServer):
    def __init__(self, page: int = 2, embedded_lines: int = 1) -> None:
        self.customers: list[dict[str, Any]] = []
        self.products: list[dict[str, Any]] = []
        self.invoices: list[dict[str, Any]] = []  # each with "lines": a plain list of line items
        self.credit_notes: list[dict[str, Any]] = []  # likewise
        self.fail: list[Any] = []
        self.requests: list[tuple[str, dict[str, list[str]]]] = []
        self.page, self.embedded_lines = page, embedded_lines
        super().__init__()

    def _answer(self, handler: BaseHTTPRequestHandler) -> None:
        url = urlparse(handler.path)
        query = parse_qs(url.query)
        self.requests.append((url.path, query))
        if handler.headers.get("authorization") != f"Bearer {KEY}":
            return send_json(handler, 401, _error("invalid_request_error", "Invalid API Key provided: rk_test_****"))
        if self.fail:
            answer = self.fail.pop(0)
            status, retry = answer if isinstance(answer, tuple) else (answer, None)
            kind = "rate_limit_error" if status == 429 else "api_error"
            return send_json(handler, status, _error(kind, "Try later"), retry)
        parts = url.path.strip("/").split("/")
        created = int(query.get("created[gte]", ["0"])[0])
        if parts == ["v1", "customers"]:
            return self._list(handler, url.path, self.customers, query)
        if parts == ["v1", "products"]:
            return self._list(handler, url.path, self.products, query)
        if parts in (["v1", "invoices"], ["v1", "credit_notes"]):
            objects = self.invoices if parts[1] == "invoices" else self.credit_notes
            shown = [self._embedded(o, f"{url.path}/{o['id']}/lines") for o in objects if o["created"] >= created]
            return self._list(handler, url.path, shown, query)
        if len(parts) == 4 and parts[1] in ("invoices", "credit_notes") and parts[3] == "lines":
            objects = self.invoices if parts[1] == "invoices" else self.credit_notes
            found = [o for o in objects if o["id"] == parts[2]]
            if not found:
                return send_json(
                    handler, 404, _error("invalid_request_error", f"No such {parts[1][:-1]}: '{parts[2]}'")
                )
            return self._list(handler, url.path, found[0]["lines"], query)
        return send_json(handler, 404, _error("invalid_request_error", f"Unrecognized request URL (GET: {url.path})"))

    def _embedded(self, obj: dict[str, Any], path: str) -> dict[str, Any]:
        lines = obj["lines"]
        first = lines[: self.embedded_lines]
        return {**obj, "lines": {"object": "list", "data": first, "has_more": len(lines) > len(first), "url": path}}

    def _list(
        self, handler: BaseHTTPRequestHandler, path: str, objects: list[Any], query: dict[str, list[str]]
    ) -> None:
        limit = min(int(query.get("limit", ["10"])[0]), 100, self.page)
        after = query.get("starting_after", [None])[0]
        start = 0
        if after is not None:
            ids = [o["id"] for o in objects]
            if after not in ids:
                return send_json(handler, 400, _error("invalid_request_error", f"No such object: '{after}'"))
            start = ids.index(after) + 1
        page = objects[start : start + limit]
        body = {"object": "list", "data": page, "has_more": start + limit < len(objects), "url": path}
        return send_json(handler, 200, body)


def _error(kind: str, message: str) -> dict[str, Any]:
    return {"error": {"type": kind, "message": message}}
