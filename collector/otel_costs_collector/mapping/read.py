"""What the mapping reads of a span: OTLP values decoded to Python, and the attribute names it
reads (a span's other attributes are never decoded, which is most of the mapping's speed)."""

from __future__ import annotations

from typing import Any

from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from otel_costs import conventions as cv

__all__ = ["READ_NAMES", "RESOURCE_READ_NAMES", "text_of", "value_of"]


def value_of(v: AnyValue) -> Any:
    """A Python value for an OTLP AnyValue (arrays → tuples, kvlists → dicts)."""
    kind = v.WhichOneof("value")
    if kind == "string_value":
        return v.string_value
    if kind == "int_value":
        return v.int_value
    if kind == "double_value":
        return v.double_value
    if kind == "bool_value":
        return v.bool_value
    if kind == "array_value":
        return tuple(value_of(x) for x in v.array_value.values)
    if kind == "kvlist_value":
        return {kv.key: value_of(kv.value) for kv in v.kvlist_value.values}
    if kind == "bytes_value":
        return v.bytes_value
    return None


def text_of(value: Any) -> str:
    """An attribute's value if it is a string, else ""."""
    return value if isinstance(value, str) else ""


def _read_names() -> frozenset[str]:
    """Every span attribute name the mapping reads (besides tag prefixes)."""
    names = {
        cv.PRICING_STATUS,
        cv.PRICING_SOURCE,
        cv.PRICING_MODEL,
        cv.PRICING_ERROR,
        cv.PRICING_TIER,
        cv.METADATA_JSON,
        "error.type",
        "gen_ai.provider.name",
        *cv.COST_PARTS,
    }
    for conv in cv.CONVENTIONS:
        for field in (
            "input",
            "output",
            "cache_read",
            "cache_write",
            "reasoning",
            "request_model",
            "response_model",
            "provider",
            "operation",
            "signature",
        ):
            names.update(getattr(conv, field))
    for aliases in cv.ATTRIBUTION_ALIASES.values():
        names.update(aliases)
    names.update(cv.FEATURE_FALLBACKS)
    names.update(cv.AGGREGATE_MARKS)
    names.update(cv.RESPONSE_ID_NAMES)
    names.update(cv.USAGE_EXTRA_NAMES)
    return frozenset(names)


#: Every span attribute name the mapping reads, besides the tag prefixes (a span's other
#: attributes are not decoded).
READ_NAMES = _read_names()
#: The resource attribute names the mapping reads, besides the tag prefixes: the service, its
#: version and environment (_Resource), the attribution aliases (_attribution) and metadata JSON (_tags).
RESOURCE_READ_NAMES = frozenset(
    {
        "service.name",
        "service.version",
        "deployment.environment.name",
        "deployment.environment",
        cv.METADATA_JSON,
        *cv.FEATURE_FALLBACKS,
        *(n for names in cv.ATTRIBUTION_ALIASES.values() for n in names),
    }
)
