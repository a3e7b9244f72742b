"""Who a call is for: user, tenant, feature and free tags, carried as OTel baggage.

Baggage lives in the OTel context (``contextvars``), so it follows threads and asyncio
tasks that are handed the context, and crosses services in the W3C ``baggage`` header
with the default propagators. Downstream services see these values: never put PII in them.

Baggage keys (also the span attribute names the processor writes):

* ``user.id``, ``tenant.id``, ``feature.name``
* ``otel_costs.tag.<key>`` for each free tag (``plan="pro"`` → ``otel_costs.tag.plan``)

Values are validated where ``attribute_to`` is called (``ValueError``), so nothing invalid
reaches a span.
"""

from __future__ import annotations

import functools
import inspect
import re
from typing import Any, Callable, Mapping, TypeVar

from opentelemetry import baggage, context

__all__ = [
    "Attribution",
    "TAG_PREFIX",
    "USER_KEY",
    "TENANT_KEY",
    "FEATURE_KEY",
    "MAX_VALUE_LENGTH",
    "MAX_TAGS",
    "attribute_to",
    "current_attribution",
    "attribution_from_baggage",
]

USER_KEY = "user.id"
TENANT_KEY = "tenant.id"
FEATURE_KEY = "feature.name"
#: Prefix of free-tag baggage keys and span attributes.
TAG_PREFIX = "otel_costs.tag."

#: Longest accepted value, in characters. Ids and names, not payloads: baggage travels in
#: every outgoing request header (W3C limits the whole header to 8192 bytes).
MAX_VALUE_LENGTH = 256
#: Most free tags in one scope (nested scopes included).
MAX_TAGS = 16
_TAG_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,63}$")
_FIELDS = {"user_id": USER_KEY, "tenant_id": TENANT_KEY, "feature": FEATURE_KEY}

F = TypeVar("F", bound=Callable[..., Any])


def _check_value(name: str, value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ValueError(f"attribute_to: {name} must be a str or int, got {type(value).__name__}")
    text = str(value)
    if not text or not text.strip():
        raise ValueError(f"attribute_to: {name} must not be empty")
    if len(text) > MAX_VALUE_LENGTH:
        raise ValueError(f"attribute_to: {name} is {len(text)} characters; the limit is {MAX_VALUE_LENGTH}")
    if not text.isprintable():
        raise ValueError(f"attribute_to: {name} contains control characters")
    return text


def _entries(user_id: Any, tenant_id: Any, feature: Any, tags: Mapping[str, Any]) -> dict[str, str]:
    entries: dict[str, str] = {}
    for arg, value in (("user_id", user_id), ("tenant_id", tenant_id), ("feature", feature)):
        if value is not None:
            entries[_FIELDS[arg]] = _check_value(arg, value)
    for key, value in tags.items():
        if not _TAG_KEY.match(key):
            raise ValueError(
                f"attribute_to: tag name {key!r} must start with a letter and contain only "
                "letters, digits, '_', '.', '-' (at most 64 characters)"
            )
        if value is not None:
            entries[TAG_PREFIX + key] = _check_value(f"tag {key!r}", value)
    return entries


class Attribution:
    """A scope of attribution. Use it as a context manager, a decorator (sync or async), or
    with :meth:`start` / :meth:`end` in middleware where a block does not fit.

    Nested scopes override field by field; leaving a scope restores the outer values.
    Not thread-safe as a start/end handle: start and end it in the same thread or task.
    """

    __slots__ = ("_entries", "_tokens")

    def __init__(self, entries: dict[str, str]):
        self._entries = entries
        self._tokens: list[object] = []

    @property
    def entries(self) -> Mapping[str, str]:
        """The baggage entries this scope sets (keys as documented in the module)."""
        return dict(self._entries)

    def _attach(self) -> object:
        ctx = context.get_current()
        current = baggage.get_all(ctx)
        tag_count = sum(1 for k in {**current, **self._entries} if k.startswith(TAG_PREFIX))
        if tag_count > MAX_TAGS:
            raise ValueError(f"attribute_to: {tag_count} tags in scope; the limit is {MAX_TAGS}")
        for key, value in self._entries.items():
            ctx = baggage.set_baggage(key, value, ctx)
        return context.attach(ctx)

    def start(self) -> "Attribution":
        """Enter the scope without a block; pair with :meth:`end` in the same context."""
        self._tokens.append(self._attach())
        return self

    def end(self) -> None:
        """Leave the scope entered by the latest :meth:`start`. Raises RuntimeError if none."""
        if not self._tokens:
            raise RuntimeError("Attribution.end() without a matching start()")
        context.detach(self._tokens.pop())  # type: ignore[arg-type]

    def __enter__(self) -> "Attribution":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.end()

    def __call__(self, func: F) -> F:
        # Each call gets its own context token, so a decorated function can run
        # concurrently in many tasks and threads.
        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                token = self._attach()
                try:
                    return await func(*args, **kwargs)
                finally:
                    context.detach(token)  # type: ignore[arg-type]

            return async_wrapper  # type: ignore[return-value]

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            token = self._attach()
            try:
                return func(*args, **kwargs)
            finally:
                context.detach(token)  # type: ignore[arg-type]

        return wrapper  # type: ignore[return-value]


def attribute_to(
    user_id: str | int | None = None,
    tenant_id: str | int | None = None,
    feature: str | None = None,
    **tags: str | int | None,
) -> Attribution:
    """Attribute the LLM calls in a scope to a user, tenant, feature and free tags.

    ``None`` leaves a field as the enclosing scope set it. Values are str or int (ints are
    written as decimal strings), non-empty, printable, at most :data:`MAX_VALUE_LENGTH`
    characters; at most :data:`MAX_TAGS` tags. Raises ``ValueError`` otherwise.

    Values travel as W3C baggage to every downstream service: use opaque ids, not PII.
    """
    return Attribution(_entries(user_id, tenant_id, feature, tags))


def is_attribution_key(key: str) -> bool:
    return key in (USER_KEY, TENANT_KEY, FEATURE_KEY) or key.startswith(TAG_PREFIX)


def attribution_from_baggage(entries: Mapping[str, object]) -> dict[str, str]:
    """The attribution entries of a baggage mapping, as span attributes.

    Baggage may come from an upstream service's header, so entries are re-checked here and
    ones that :func:`attribute_to` would refuse are left out.
    """
    out: dict[str, str] = {}
    tags = 0
    for key, value in entries.items():
        if not is_attribution_key(key) or not isinstance(value, str):
            continue
        if not value or len(value) > MAX_VALUE_LENGTH or not value.isprintable():
            continue
        if key.startswith(TAG_PREFIX):
            if tags >= MAX_TAGS or not _TAG_KEY.match(key[len(TAG_PREFIX) :]):
                continue
            tags += 1
        out[key] = value
    return out


def current_attribution() -> dict[str, str]:
    """The attribution in force in the current context (baggage key → value)."""
    return attribution_from_baggage(baggage.get_all())
