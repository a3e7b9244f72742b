"""Budget enforcement in the app: refuse an LLM call before it is made when the current
attribution (tenant, user, feature from ``attribute_to``) is over a hard budget.

The collector evaluates budgets (``GET /v1/budgets/status``); the guard asks it and caches
the answer per attribution for ``cache_s`` seconds, so the hot path makes no network call
per LLM call — at most one per attribution per ``cache_s``. Spend is what the collector has
stored, so a call that starts just under the limit can end over it; the next is refused.

When the collector cannot answer, ``on_unreachable`` decides: ``"allow"`` (default: an
outage of cost tracking does not take the product down) or ``"deny"``; either is logged.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import json
import logging
import os
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from datetime import datetime
from decimal import Decimal
from typing import Any, Callable, Mapping, TypeVar

from .attribution import current_attribution

__all__ = [
    "BudgetExceeded",
    "BudgetGuard",
    "check_budget",
    "enforce_budget",
    "BUDGET_URL_ENV",
    "ON_UNREACHABLE_ENV",
    "CACHE_ENV",
    "TOKEN_ENV",
    "DEFAULT_BUDGET_URL",
    "DEFAULT_CACHE_S",
]

_log = logging.getLogger("otel_costs")

BUDGET_URL_ENV = "OTEL_COSTS_BUDGET_URL"
ON_UNREACHABLE_ENV = "OTEL_COSTS_BUDGET_ON_UNREACHABLE"
CACHE_ENV = "OTEL_COSTS_BUDGET_CACHE_S"
TOKEN_ENV = "OTEL_COSTS_TOKEN"
DEFAULT_BUDGET_URL = "http://localhost:4318"  # the collector's HTTP port
DEFAULT_CACHE_S = 5.0
DEFAULT_TIMEOUT_S = 2.0
_MAX_CACHED = 10_000

F = TypeVar("F", bound=Callable[..., Any])


class BudgetExceeded(Exception):
    """The current attribution is over a hard budget (or, with ``on_unreachable="deny"``,
    budgets could not be checked: then ``budget_id`` is None).

    Attributes: ``budget_id``, ``scope`` (tenant/user/feature), ``spend_usd`` and
    ``limit_usd`` (Decimal), ``period``, ``resets_at`` (aware datetime, UTC).
    """

    def __init__(
        self,
        message: str,
        *,
        budget_id: str | None = None,
        scope: Mapping[str, str] | None = None,
        spend_usd: Decimal | None = None,
        limit_usd: Decimal | None = None,
        period: str | None = None,
        resets_at: datetime | None = None,
    ):
        super().__init__(message)
        self.budget_id = budget_id
        self.scope = dict(scope or {})
        self.spend_usd = spend_usd
        self.limit_usd = limit_usd
        self.period = period
        self.resets_at = resets_at


class BudgetGuard:
    """Checks the current attribution against hard budgets. Thread-safe.

    Args (each: argument, then environment variable, then default):
        url: the collector's HTTP base URL (``OTEL_COSTS_BUDGET_URL``, http://localhost:4318).
        token: bearer token when the collector has auth on (``OTEL_COSTS_TOKEN``).
        cache_s: seconds an answer is reused per attribution (``OTEL_COSTS_BUDGET_CACHE_S``, 5).
        on_unreachable: ``"allow"`` or ``"deny"`` (``OTEL_COSTS_BUDGET_ON_UNREACHABLE``, allow).
        timeout_s: how long one status request may take (2 s).
        clock: monotonic seconds (tests move it).

    Raises ValueError for an invalid setting.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        token: str | None = None,
        cache_s: float | None = None,
        on_unreachable: str | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.url = (url or os.environ.get(BUDGET_URL_ENV, "").strip() or DEFAULT_BUDGET_URL).rstrip("/")
        if not self.url.startswith(("http://", "https://")):
            raise ValueError(f"budget url must be http:// or https://, got {self.url!r}")
        self.token = token if token is not None else (os.environ.get(TOKEN_ENV) or None)
        raw_cache = cache_s if cache_s is not None else os.environ.get(CACHE_ENV, "").strip() or DEFAULT_CACHE_S
        try:
            self.cache_s = float(raw_cache)
        except ValueError:
            raise ValueError(f"{CACHE_ENV}: {raw_cache!r} is not a number of seconds") from None
        if not 0 <= self.cache_s <= 3600:
            raise ValueError(f"cache_s must be within 0..3600 seconds, got {self.cache_s}")
        mode = (on_unreachable or os.environ.get(ON_UNREACHABLE_ENV, "").strip() or "allow").lower()
        if mode not in ("allow", "deny"):
            raise ValueError(f"on_unreachable must be 'allow' or 'deny', got {mode!r}")
        self.on_unreachable = mode
        self.timeout_s = timeout_s
        self._clock = clock
        self._cache: dict[tuple[str, str, str], tuple[float, list[dict[str, Any]] | None]] = {}
        self._lock = threading.Lock()

    def check(self, attribution: Mapping[str, str] | None = None) -> None:
        """Raise :class:`BudgetExceeded` if the attribution (default: the current one) is
        over a hard budget. Blocks for at most ``timeout_s`` on a cache miss."""
        key = _key(attribution)
        if key is None:
            return
        statuses = self._cached(key)
        if statuses is _MISS:
            statuses = self._fetch(key)
        self._decide(key, statuses)

    async def acheck(self, attribution: Mapping[str, str] | None = None) -> None:
        """:meth:`check` for async code: a cache miss is fetched on a worker thread."""
        key = _key(attribution)
        if key is None:
            return
        statuses = self._cached(key)
        if statuses is _MISS:
            statuses = await asyncio.to_thread(self._fetch, key)
        self._decide(key, statuses)

    def __call__(self, fn: F) -> F:
        """Decorate a sync or async function: check before every call."""
        return _decorate(fn, lambda: self)

    def _cached(self, key: tuple[str, str, str]) -> Any:
        entry = self._cache.get(key)
        if entry is not None and entry[0] > self._clock():
            return entry[1]
        return _MISS

    def _fetch(self, key: tuple[str, str, str]) -> list[dict[str, Any]] | None:
        """The budgets that apply to ``key`` from the collector; None when it did not answer."""
        query = urllib.parse.urlencode({k: v for k, v in zip(("tenant", "user", "feature"), key) if v})
        request = urllib.request.Request(f"{self.url}/v1/budgets/status?{query}")
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        statuses: list[dict[str, Any]] | None
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                doc = json.loads(response.read())
            statuses = [s for s in doc.get("budgets", []) if isinstance(s, dict)]
        except (OSError, ValueError, AttributeError) as exc:
            _log.warning(
                "otel_costs: budget status unavailable from %s (%s); %s calls",
                self.url,
                exc,
                "allowing" if self.on_unreachable == "allow" else "denying",
            )
            statuses = None
        with self._lock:
            if len(self._cache) >= _MAX_CACHED:
                self._cache.clear()
            self._cache[key] = (self._clock() + self.cache_s, statuses)
        return statuses

    def _decide(self, key: tuple[str, str, str], statuses: list[dict[str, Any]] | None) -> None:
        if statuses is None:
            if self.on_unreachable == "deny":
                raise BudgetExceeded(f"budget status unavailable from {self.url} and on_unreachable is 'deny'")
            return
        for s in statuses:
            if s.get("hard") and s.get("exceeded"):
                raise _exceeded(s)


_MISS = object()
_PERIOD_NOUN = {"daily": "day", "weekly": "week", "monthly": "month"}


def _key(attribution: Mapping[str, str] | None) -> tuple[str, str, str] | None:
    attrs = current_attribution() if attribution is None else attribution
    key = (attrs.get("tenant.id", ""), attrs.get("user.id", ""), attrs.get("feature.name", ""))
    return key if any(key) else None


def _exceeded(s: Mapping[str, Any]) -> BudgetExceeded:
    scope = {k: s[k] for k in ("tenant", "user", "feature") if s.get(k)}
    resets = s.get("resets_at")
    resets_at = datetime.fromisoformat(resets.replace("Z", "+00:00")) if isinstance(resets, str) else None
    spend, limit = Decimal(str(s.get("spend_usd", "0"))), Decimal(str(s.get("amount_usd", "0")))
    where = ", ".join(f"{k}={v}" for k, v in scope.items())
    return BudgetExceeded(
        f"budget {s.get('id')} ({where}) is spent: ${spend.normalize():f} of ${limit.normalize():f} "
        f"this {_PERIOD_NOUN.get(str(s.get('period')), 'period')}; resets {resets}",
        budget_id=s.get("id"),
        scope=scope,
        spend_usd=spend,
        limit_usd=limit,
        period=s.get("period"),
        resets_at=resets_at,
    )


_default: BudgetGuard | None = None
_default_lock = threading.Lock()


def _guard() -> BudgetGuard:
    global _default
    with _default_lock:
        if _default is None:
            _default = BudgetGuard()
        return _default


def check_budget(attribution: Mapping[str, str] | None = None) -> None:
    """Raise :class:`BudgetExceeded` when the current attribution is over a hard budget,
    using a guard configured from the environment (see :class:`BudgetGuard`)."""
    _guard().check(attribution)


def enforce_budget(fn: F) -> F:
    """Decorator: :func:`check_budget` before every call of a sync or async function."""
    return _decorate(fn, _guard)


def _decorate(fn: F, guard: Callable[[], BudgetGuard]) -> F:
    if inspect.iscoroutinefunction(fn):

        @functools.wraps(fn)
        async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
            await guard().acheck()
            return await fn(*args, **kwargs)

        return async_wrapper  # type: ignore[return-value]

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        guard().check()
        return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]
