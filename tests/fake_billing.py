"""A loopback fake of the providers' cost reports, in the shapes their API references
document: OpenAI ``GET /v1/organization/costs`` (Bearer admin key; Unix-second buckets;
``amount.value`` in dollars, a number or a decimal string; ``line_item`` "model, part") and
Anthropic ``GET /v1/organizations/cost_report`` (``x-api-key``, ``anthropic-version``;
RFC 3339 buckets; ``amount`` a decimal string in cents). Both page by ``limit`` buckets and
``next_page`` (the fake serves at most ``page_days`` buckets a page, to force several pages).

``billed[provider][day]`` holds the lines a day answers with: (line item or description,
model or None, amount in USD as a decimal string[, OpenAI project id]); OpenAI's results name
the project only when the request groups by ``project_id``. ``fail[provider]`` is a list of answers
to give instead, in turn: an HTTP status, (status, retry-after seconds), or "garbage".
``requests`` records (provider, path, query, headers) of every request."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlparse

from tests.loopback import LoopbackServer, send_json

KEYS = {"openai": "sk-admin-openai-test", "anthropic": "sk-ant-admin-test"}


class FakeBilling(LoopbackServer):
    def __init__(self, page_days: int = 2) -> None:
        self.billed: dict[str, dict[date, list[tuple[str, str | None, str]]]] = {"openai": {}, "anthropic": {}}
        self.fail: dict[str, list[Any]] = {"openai": [], "anthropic": []}
        self.requests: list[tuple[str, str, dict[str, list[str]], dict[str, str]]] = []
        self.page_days = page_days
        super().__init__()
        self.bases = {"openai": self.url + "/openai/v1", "anthropic": self.url + "/anthropic/v1"}

    def _answer(self, handler: BaseHTTPRequestHandler) -> None:
        url = urlparse(handler.path)
        query = parse_qs(url.query)
        provider = "openai" if url.path == "/openai/v1/organization/costs" else "anthropic"
        self.requests.append((provider, url.path, query, dict(handler.headers)))
        if url.path not in ("/openai/v1/organization/costs", "/anthropic/v1/organizations/cost_report"):
            return send_json(handler, 404, {"error": {"message": "not found"}})
        if provider == "openai" and handler.headers.get("authorization") != f"Bearer {KEYS['openai']}":
            return send_json(
                handler, 401, {"error": {"message": "Incorrect API key provided", "type": "invalid_request_error"}}
            )
        if provider == "anthropic" and handler.headers.get("x-api-key") != KEYS["anthropic"]:
            return send_json(
                handler,
                401,
                {"type": "error", "error": {"type": "authentication_error", "message": "invalid x-api-key"}},
            )
        if self.fail[provider]:
            failure = self.fail[provider].pop(0)
            if failure == "garbage":
                return send_json(handler, 200, {"object": "page", "data": "nope"})
            status, retry_after = failure if isinstance(failure, tuple) else (failure, None)
            return send_json(handler, status, {"error": {"message": "fake failure"}}, retry_after)
        if provider == "openai":
            start = datetime.fromtimestamp(int(query["start_time"][0]), timezone.utc).date()
            end = datetime.fromtimestamp(int(query["end_time"][0]), timezone.utc).date()
        else:
            start = datetime.fromisoformat(query["starting_at"][0].replace("Z", "+00:00")).date()
            end = datetime.fromisoformat(query["ending_at"][0].replace("Z", "+00:00")).date()
        first = start + timedelta(days=int(query.get("page", ["0"])[0].removeprefix("page_") or 0))
        limit = min(int(query.get("limit", ["7"])[0]), self.page_days)
        days = [first + timedelta(days=i) for i in range(limit) if first + timedelta(days=i) < end]
        more = bool(days) and days[-1] + timedelta(days=1) < end
        next_page = f"page_{(days[-1] - start).days + 1}" if more else None
        by_project = "project_id" in query.get("group_by", [])
        data = [self._bucket(provider, day, by_project) for day in days]
        send_json(handler, 200, {"object": "page", "data": data, "has_more": more, "next_page": next_page})

    def _bucket(self, provider: str, day: date, by_project: bool = False) -> dict[str, Any]:
        t0 = datetime.combine(day, datetime.min.time(), timezone.utc)
        lines = self.billed[provider].get(day, [])
        if provider == "openai":
            results = [
                {
                    "object": "organization.costs.result",
                    # OpenAI's amounts arrive as numbers and as decimal strings (a float's
                    # shortest repr is the decimal written, for amounts of ≤ 15 digits)
                    "amount": {"value": float(usd) if i % 2 else usd, "currency": "usd"},
                    "line_item": entry[0],
                    "project_id": (entry[3] if len(entry) > 3 else None) if by_project else None,
                }
                for i, entry in enumerate(lines)
                for usd in [entry[2]]
            ]
            return {
                "object": "bucket",
                "start_time": int(t0.timestamp()),
                "end_time": int((t0 + timedelta(days=1)).timestamp()),
                "results": results,
            }
        results = [
            {
                "amount": format(Decimal(usd) * 100, "f"),  # cents
                "currency": "USD",
                "description": line,
                "model": model,
                "cost_type": "tokens" if model else "web_search",
                "token_type": "output_tokens" if model else None,
                "service_tier": "standard" if model else None,
                "context_window": "0-200k" if model else None,
                "workspace_id": None,
            }
            for line, model, usd, *_ in lines
        ]
        return {
            "starting_at": t0.isoformat().replace("+00:00", "Z"),
            "ending_at": (t0 + timedelta(days=1)).isoformat().replace("+00:00", "Z"),
            "results": results,
        }
