"""Who a span is for and its free tags: the user, tenant and feature from our attributes or
the aliases other instrumentations write (span before resource), and tags from our prefix,
OpenLLMetry association properties and OpenInference metadata. Pure; values are capped."""

from __future__ import annotations

import json
from typing import Any

from otel_costs import conventions as cv
from otel_costs.attribution import MAX_TAGS, MAX_VALUE_LENGTH

__all__ = ["attribution_of", "tags_of"]


def _clean(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        return None
    text = str(value).strip()
    if not text or len(text) > MAX_VALUE_LENGTH or not text.isprintable():
        return None
    return text


def attribution_of(attrs: dict[str, Any], resource: dict[str, Any]) -> tuple[str, str, str]:
    """(user, tenant, feature) from the first alias present, span before resource; the
    feature from a fallback name (what the call is for) when no alias names one."""
    if _NAMES.isdisjoint(attrs) and _NAMES.isdisjoint(resource):  # most spans: no name to probe
        return _NOBODY
    found = [_first(attrs, resource, names) for names in _ALIASES]
    return found[0], found[1], found[2] or _first(attrs, resource, cv.FEATURE_FALLBACKS)


def _first(attrs: dict[str, Any], resource: dict[str, Any], names: tuple[str, ...]) -> str:
    for source in (attrs, resource):
        for name in names:
            raw = source.get(name)
            if raw is not None:
                value = _clean(raw)
                if value is not None:
                    return value
    return ""


_ALIASES = (cv.ATTRIBUTION_ALIASES["user_id"], cv.ATTRIBUTION_ALIASES["tenant_id"], cv.ATTRIBUTION_ALIASES["feature"])
_NAMES = frozenset(name for names in (*_ALIASES, cv.FEATURE_FALLBACKS) for name in names)
_NOBODY = ("", "", "")


def tags_of(
    attrs: dict[str, Any], inherited: dict[str, str] | None = None, names: list[str] | None = None
) -> dict[str, str]:
    """Free tags: our tag prefix, OpenLLMetry association properties, OpenInference metadata.
    ``names``: the names in ``attrs`` with a tag prefix, when the caller knows them."""
    tags = dict(inherited) if inherited else {}
    prefixes = cv.TAG_PREFIXES
    for key in attrs if names is None else names:
        if key.startswith(prefixes):
            raw = attrs[key]
            for prefix in prefixes:
                if key.startswith(prefix):
                    name = key[len(prefix) :]
                    value = _clean(raw)
                    if value is not None and name and len(name) <= 64 and name not in cv.ATTRIBUTION_KEYS:
                        tags[name] = value
                    break
    metadata = attrs.get(cv.METADATA_JSON)
    if isinstance(metadata, str) and metadata.startswith("{") and len(metadata) <= 16_384:
        try:
            parsed = json.loads(metadata)
        except (ValueError, RecursionError):  # deeply nested JSON raises RecursionError
            parsed = None
        if isinstance(parsed, dict):
            for key, raw in parsed.items():
                value = _clean(raw)
                if value is not None and isinstance(key, str) and 0 < len(key) <= 64:
                    tags.setdefault(key, value)
    if len(tags) > MAX_TAGS:
        tags = dict(sorted(tags.items())[:MAX_TAGS])
    return tags
