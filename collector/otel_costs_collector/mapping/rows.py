"""OTLP spans → rows of the ``genai_spans`` table. Pure: proto in, rows out, no I/O. The one
place that decides what a span means.

Reuses the SDK's convention tables and pricing, so a span is read and priced the same way
whether it was priced in a Python app or arrives bare from another language or through an
OTel Collector. Spans that already carry an otel-costs price keep it.

Per-span Python work is what limits a collector, so a row is a plain list in
:data:`~otel_costs_collector.storage.columns.COLUMNS` order holding what the writer inserts
(money as ``Decimal``, tags as a dict), and only the attributes the mapping reads are decoded.
"""

from __future__ import annotations

import hashlib
import time
from decimal import Decimal
from typing import Any

from otel_costs import conventions as cv
from otel_costs.attribution import MAX_VALUE_LENGTH
from otel_costs.pricing import Cost, Pricer, PricingStatus
from otel_costs.usage import TokenUsage, UsageError, has_facts, read_usage
from otel_costs_collector.mapping.attribution import attribution_of, tags_of
from otel_costs_collector.mapping.otlp import BadValue, as_read, value
from otel_costs_collector.mapping.read import READ_NAMES, RESOURCE_READ_NAMES, text_of
from otel_costs_collector.mapping.sdk_cost import sdk_cost, too_fine
from otel_costs_collector.storage.columns import N_COSTS, SPAN_ID, TRACE_ID

__all__ = [
    "oldest_ns",
    "price_columns",
    "Link",
    "LINK_END",
    "LINK_FEATURE",
    "LINK_PARENT",
    "LINK_SPAN",
    "LINK_TENANT",
    "LINK_TRACE",
    "LINK_USER",
    "MapResult",
    "map_request",
    "span_count",
]

_ZERO = Decimal(0)
_ZEROS: tuple[Decimal, ...] = (_ZERO,) * N_COSTS
_STATUS = {0: "unset", 1: "ok", 2: "error"}
_MAX_ERROR = 500
# The raw table's TTL is on toDateTime(timestamp), which ends in February 2106: a later
# row would be dropped as expired at insert, without a word.
_MAX_TIME = (1 << 32) * 1_000_000_000


#: A span that is not stored (no usage), as otel_costs_collector.mapping.calls needs it to walk
#: a trace up: (trace id, span id, parent id (hex), when it ended (ns), user, tenant, feature
#: ("" when none)). A plain tuple, read by the LINK_* indexes: one is made for nearly every
#: span of an app's whole traces and pickled back from a mapping worker, where a NamedTuple
#: costs ten times as much.
Link = tuple[str, str, str, int, str, str, str]
LINK_TRACE, LINK_SPAN, LINK_PARENT, LINK_END, LINK_USER, LINK_TENANT, LINK_FEATURE = range(7)


class MapResult:
    """What one request became: rows, and counts for the OTLP answer and metrics.

    ``rows``: one list a stored span, values in ``storage.columns.COLUMNS`` order: ``timestamp`` and
    ``duration_ns`` in ns (ints), token counts as ints, the five costs as ``Decimal`` (at
    most 18 decimal places, what the table stores), ``tags`` a dict. ``links``: the spans
    without usage that have a parent or an attribution (:data:`Link`). ``facts``: the usage
    of the rows that say billed facts beyond their tokens (tier, web searches, …), by trace id
    + span id (hex): another span of the same call may lack them
    (otel_costs_collector.mapping.billed_facts).
    """

    __slots__ = ("rows", "links", "facts", "received", "non_genai", "rejected", "repeated", "errors", "request_token")

    def __init__(self) -> None:
        self.rows: list[list[Any]] = []
        self.links: list[Link] = []
        self.facts: dict[str, TokenUsage] = {}
        self.received = 0
        self.non_genai = 0
        self.rejected = 0
        self.repeated = 0  # GenAI spans the request held before (same trace and span id): stored once
        self.errors: list[str] = []
        self.request_token = ""  # identifies the request's GenAI spans; "" when it has none

    def reject(self, message: str) -> None:
        self.rejected += 1
        if len(self.errors) < 5:  # enough to diagnose, bounded for huge bad requests
            self.errors.append(message)


def price_columns(
    cost: Cost, *, checked: bool = False
) -> tuple[tuple[Decimal, ...], PricingStatus, str, str, str, str, str]:
    """A cost as a row holds it: (the N_COSTS cost columns, status, pricing source, pricing
    model, error, service tier, cost source). A cost finer than storage keeps (18 decimal
    places) is refused as UNPRICED unless ``checked`` (otel_costs_collector.mapping.sdk_cost
    checked it)."""
    status, source, model, error = cost.status, cost.source, cost.model or "", cost.error or ""
    costs, cost_source = _ZEROS, "local"
    if cost.total is not None:
        # Every part is set when the total is (otel_costs.pricing.Cost).
        parts = (cost.input, cost.output, cost.cache_read, cost.cache_write, cost.web_search, cost.adjustment)
        costs = tuple(c or _ZERO for c in parts) + (cost.total,)
        cost_source = cost.source_of_cost
        if not checked and any(too_fine(c) for c in costs):
            costs, status = _ZEROS, PricingStatus.UNPRICED
            error = "cost has more than 18 decimal places; storage would round it"
    return costs, status, source, model, error, cost.tier, cost_source


def oldest_ns(raw_ttl_days: int | None) -> int:
    """The earliest start a span may have now: raw rows older than their TTL are dropped by
    ClickHouse at insert (0: no limit)."""
    return time.time_ns() - raw_ttl_days * 86_400_000_000_000 if raw_ttl_days else 0


def span_count(request: Any) -> int:
    """How many spans a request (an ExportTraceServiceRequest, or as mapping.otlp reads it)
    holds, whatever they are."""
    return sum(len(ss.spans) for rs in request.resource_spans for ss in rs.scope_spans)


def map_request(
    request: Any,
    pricer: Pricer,
    tenant: str | None = None,
    *,
    read_all: bool = False,
    token: str | None = None,
    oldest_ns: int = 0,
) -> MapResult:
    """Rows for the GenAI spans of one OTLP request: as :func:`otel_costs_collector.mapping.otlp.parse`
    reads it (an official ExportTraceServiceRequest is re-read so).

    ``tenant``, when given (the sender's token is bound to a tenant), is stored as every
    row's tenant whatever the spans claim. Only the attributes the mapping uses are decoded
    (prompts and completions that instrumentations record can be megabytes);
    ``read_all`` decodes every one (tests compare both). ``token``: the request's token for
    the rows (default: a hash of their trace and span ids). ``oldest_ns``: spans that
    started before it are rejected (older than the raw rows' TTL, which ClickHouse would
    drop at insert while the rollups kept them: the two report sources would disagree).

    Non-GenAI spans are counted in ``non_genai`` and dropped; a GenAI span the request
    already held (same trace and span id) in ``repeated``, and stored once. A span that cannot
    be stored (bad ids, no start time, a read attribute that is not a valid value) is counted
    in ``rejected`` with a message; its batch-mates are kept. Unreadable usage or an unknown
    model gives a *marked* row (pricing_status), never a crash and never a silent $0. Never
    raises for any parsed request.
    """
    request = as_read(request)
    result = MapResult()
    usage_names = cv.USAGE_ATTRIBUTE_NAMES
    wanted, prefixes = READ_NAMES, cv.TAG_PREFIXES
    wanted_tags = _READ_TAGS
    rows = result.rows
    known = _KNOWN
    seen: set[bytes] = set()
    for resource_spans in request.resource_spans:
        resource: _Resource | None = None
        for scope_spans in resource_spans.scope_spans:
            scope_name = ""  # read once a GenAI span of the scope needs it
            for span in scope_spans.spans:
                result.received += 1
                # One pass over the attributes: reading upb submessages is the dominant
                # per-span cost, so each is read once.
                attrs = {}
                tagged = []  # the names with a tag prefix (attribution.tags_of reads only those)
                bad = ""
                attributes = span.attributes  # name → encoded value (mapping.otlp)
                for key in attributes:  # (the names alone: faster than items() when few are read)
                    if key in wanted:
                        if key in wanted_tags:
                            tagged.append(key)
                    elif key.startswith(prefixes):
                        tagged.append(key)
                    elif not read_all:
                        continue
                    raw = attributes[key]
                    decoded = known.get(raw, _UNKNOWN)  # most values repeat: model, provider, status
                    if decoded is _UNKNOWN:
                        try:
                            decoded = value(raw)
                        except BadValue as exc:
                            bad = f"attribute {key[:MAX_VALUE_LENGTH]!r}: {exc}"
                            continue
                        if len(raw) <= _KNOWN_BYTES and type(decoded) in _IMMUTABLE:
                            if len(known) >= _MAX_KNOWN:
                                known.clear()  # the values are the senders': memory stays bounded
                            known[raw] = decoded
                    attrs[key] = decoded
                if bad:
                    result.reject(f"span {span.span_id.hex() or '?'}: {bad}")
                    continue
                if usage_names.isdisjoint(attrs) or attrs.get(cv.PRICING_STATUS) == _COUNTED_ELSEWHERE:
                    # Not an LLM call, or one whose cost another span of the request carries.
                    result.non_genai += 1
                    if len(span.trace_id) == 16 and len(span.span_id) == 8:
                        # Kept as a link: a call below it may take its attribution.
                        user, claimed, feature = attribution_of(attrs, _NO_ATTRS)
                        result.links.append(
                            (
                                span.trace_id.hex(),
                                span.span_id.hex(),
                                span.parent_span_id.hex(),
                                span.end_time_unix_nano,
                                user,
                                claimed if tenant is None else tenant,
                                feature,
                            )
                        )
                    continue
                ids = span.trace_id + span.span_id
                if ids in seen:  # the same span twice in one request: stored once, as across requests
                    result.repeated += 1
                    continue
                seen.add(ids)
                if resource is None:
                    resource = _Resource(resource_spans.resource.attributes, read_all)
                if resource.bad:
                    result.reject(f"span {span.span_id.hex() or '?'}: {resource.bad}")
                    continue
                if not scope_name:
                    scope_name = scope_spans.scope.name[:MAX_VALUE_LENGTH]
                try:
                    row = _row(span, attrs, resource, pricer, result, tenant, oldest_ns, scope_name, tagged)
                except Exception as exc:  # a mapping bug must cost one span, not the batch
                    result.reject(f"span {span.span_id.hex() or '?'}: internal error {type(exc).__name__}: {exc}")
                    continue
                if row is not None:
                    rows.append(row)
    if rows:
        if token is None:
            # The same spans give the same token, so a retried request is recognised.
            digest = hashlib.sha256()
            for row in rows:
                digest.update(row[TRACE_ID].encode())
                digest.update(row[SPAN_ID].encode())
            token = digest.hexdigest()[:32]
        result.request_token = token
        for row in rows:
            row.append(token)
    return result


class _Resource:
    """A resource's attributes and what every span under it shares. ``bad``: why a value the
    mapping reads is not one ("" when all are): its calls are rejected, not stored without it
    (a tenant left out would be a silently wrong attribution)."""

    __slots__ = ("attrs", "bad", "service", "tags", "version", "environment")

    def __init__(self, attributes: Any, read_all: bool = False):
        attrs: dict[str, Any] = {}
        self.bad = ""
        for key in attributes:  # only the names the mapping reads are decoded
            if read_all or key in RESOURCE_READ_NAMES or key.startswith(cv.TAG_PREFIXES):
                try:
                    attrs[key] = value(attributes[key])
                except BadValue as exc:
                    self.bad = f"resource attribute {key[:MAX_VALUE_LENGTH]!r}: {exc}"
        self.attrs = attrs
        self.service = text_of(attrs.get("service.name")) or "unknown_service"
        self.tags = tags_of(attrs)
        # The release and where it runs: what a spike is tied to (capped like every name).
        self.version = text_of(attrs.get("service.version"))[:MAX_VALUE_LENGTH]
        self.environment = (
            text_of(attrs.get("deployment.environment.name")) or text_of(attrs.get("deployment.environment"))
        )[:MAX_VALUE_LENGTH]


def _row(
    span: Any,
    attrs: dict[str, Any],
    resource: _Resource,
    pricer: Pricer,
    result: MapResult,
    tenant_override: str | None = None,
    oldest_ns: int = 0,
    scope_name: str = "",
    tagged: list[str] | None = None,
) -> list[Any] | None:
    trace_id, span_id = span.trace_id, span.span_id
    if len(trace_id) != 16 or len(span_id) != 8:
        result.reject(f"span {span_id.hex() or '?'}: trace_id must be 16 bytes and span_id 8")
        return None
    start = span.start_time_unix_nano
    if not start:
        result.reject(f"span {span_id.hex()}: start_time_unix_nano is missing")
        return None
    if start >= _MAX_TIME:
        result.reject(f"span {span_id.hex()}: start_time_unix_nano {start} is after 2106 (storage's last instant)")
        return None
    if start < oldest_ns:
        result.reject(
            f"span {span_id.hex()}: started {(oldest_ns - start) // 86_400_000_000_000 + 1} day(s) before "
            "the raw rows' TTL (OTEL_COSTS_RAW_TTL_DAYS); raise it to store older spans"
        )
        return None
    status = PricingStatus.PRICED
    error = ""
    try:
        usage = read_usage(attrs)
    except UsageError as exc:
        usage, status, error = None, PricingStatus.INVALID_USAGE, str(exc)
    costs, source, model, priced_by = _ZEROS, "", "", "collector"
    tier = ""
    cost_source = "local"
    if cv.is_aggregate(attrs):  # stored for context; its calls are counted on their own spans
        status, error, source = PricingStatus.AGGREGATE, "", text_of(attrs.get(cv.PRICING_SOURCE)) or pricer.source
        if attrs.get(cv.PRICING_STATUS) == PricingStatus.AGGREGATE.value:
            priced_by = "sdk"
    elif usage is not None:
        cost = sdk_cost(attrs)  # a price the SDK put on the span, kept when well formed
        if cost is not None:
            priced_by = "sdk"
        else:
            cost = pricer.price(usage, start)
        if has_facts(usage):  # another span of its call may lack them (mapping.billed_facts)
            result.facts[trace_id.hex() + span_id.hex()] = usage
        # (sdk_cost checked its amounts already, and only where they could be too fine.)
        costs, status, source, model, error, tier, cost_source = price_columns(cost, checked=priced_by == "sdk")
    if usage is not None:
        # Names a sender chose: capped like every other string (a 4 MiB model name would be
        # stored, and shown, whole). Priced above with the whole name: no price matches it.
        provider = (usage.provider or "")[:MAX_VALUE_LENGTH]
        request_model = (usage.request_model or "")[:MAX_VALUE_LENGTH]
        response_model = (usage.response_model or "")[:MAX_VALUE_LENGTH]
        operation = (usage.operation or "")[:MAX_VALUE_LENGTH]
        tokens = (
            usage.input_tokens,
            usage.output_tokens,
            usage.cache_read_tokens,
            usage.cache_write_tokens,
            usage.reasoning_tokens,
            usage.cache_write_1h_tokens,
            usage.web_searches,
        )
    else:
        provider, request_model, response_model, operation = (
            text_of(attrs.get("gen_ai.provider.name"))[:MAX_VALUE_LENGTH],
            "",
            "",
            "",
        )
        tokens = (0, 0, 0, 0, 0, 0, 0)
    user, tenant, feature = attribution_of(attrs, resource.attrs)
    if tenant_override is not None:
        tenant = tenant_override
    tags = tags_of(attrs, resource.tags, tagged)
    code = span.status.code
    error_type = attrs.get("error.type")
    if not isinstance(error_type, str):
        error_type = span.status.message if code == 2 else ""
    end = span.end_time_unix_nano
    return [
        start,
        end - start if end > start else 0,
        trace_id.hex(),
        span_id.hex(),
        span.parent_span_id.hex(),
        resource.service,
        span.name[:MAX_VALUE_LENGTH],
        provider,
        request_model,
        response_model,
        operation,
        *tokens,
        *costs,
        status.value,
        source,
        model,
        error[:_MAX_ERROR],
        priced_by,
        tier,
        cost_source,
        user,
        tenant,
        feature,
        tags,
        _STATUS.get(code, "unset"),
        error_type[:_MAX_ERROR],
        cv.response_id(attrs),
        "",
        "",
        scope_name,
        resource.version,
        resource.environment,
    ]


_COUNTED_ELSEWHERE = PricingStatus.COUNTED_ELSEWHERE.value
# Encoded attribute values already decoded (mapping.otlp.value), shared by every request of
# the process: most of a span's values repeat across spans. Only short immutable ones, at most
# _MAX_KNOWN (then forgotten at once): memory stays bounded whatever senders send.
_KNOWN: dict[bytes, Any] = {}
_KNOWN_BYTES = 64
_MAX_KNOWN = 16_384
_IMMUTABLE = frozenset({str, int, float, bool})
_UNKNOWN = object()
# Names the mapping reads that are tags too (OpenLLMetry's association properties that name
# the user or tenant).
_READ_TAGS = frozenset(name for name in READ_NAMES if name.startswith(cv.TAG_PREFIXES))
_NO_ATTRS: dict[str, Any] = {}
