"""One cost per provider call: the rule, and the SDK's ledger that applies it as a process's
spans end (children before parents).

Real stacks put one call on several spans: two instrumentations of the same call, nested
(OpenInference's Anthropic span around the anthropic SDK's own) or side by side (OpenLLMetry's
beside the SDK's, in another trace), and aggregates above the calls (agents, workflows, an
SDK's outer span) that carry the sum of their calls' usage. :func:`decide` is the rule, for a
span with usage; the SDK's :class:`CallLedger` and the collector's index
(otel_costs_collector.mapping.calls) find its inputs and both apply it:

* an aggregate by convention (agents, workflows) → ``aggregate``;
* usage spans ended below it (children first): one with the same usage → the same call, the
  inner span carries the cost and this one is ``counted_elsewhere``; otherwise → ``aggregate``;
* else the same response id (``gen_ai.response.id``) as a span that ended before and overlaps
  it in time, with the same usage → ``counted_elsewhere``, pointing at that span. The time
  overlap and the usage keep a server that reuses ids from folding separate calls into one;
  one output token of slack allows for OpenLLMetry's Anthropic streams, which count
  ``message_start``'s output token twice (the span that ends first carries the cost: the
  anthropic SDK's, inside OpenLLMetry's wrapper);
* else a counting span of *another instrumentation* that ended before it and overlaps it in
  time, of the same provider and with the same usage (every count), in the same trace or both
  roots of their traces → ``counted_elsewhere``, pointing at that span: one call traced by two
  instrumentations side by side, with no response id to pair them (the anthropic SDK's own
  span beside OpenInference's ``messages.stream``, each the root of its own trace). Two calls
  traced by one instrumentation are never merged this way, however alike;
* else a counting span already seen *above* it (only the collector sees a parent before its
  child: an exporter that sent the outer span first): the same usage → ``counted_elsewhere``
  on it; another usage → it counts, and is a *suspect* (a pair the rules do not recognise);
* else it counts.

:data:`NOT_COUNTED` names the statuses of spans stored for context and never summed; the
collector's SQL reads it from here (otel_costs_collector.sql).

Usage is read only to compare two spans, so the common span costs a few dict lookups on the
app's thread. Memory is bounded: :data:`MAX_OPEN` parents with at most two calls ended
below each (one or "more than one" is all a verdict needs), :data:`MAX_RESPONSES` response
ids, oldest dropped first; entries hold the finished spans' attribute mappings.
Thread-safety: only dict and list operations that are atomic under the GIL; no locks, no I/O.
"""

from __future__ import annotations

from collections import deque
from enum import Enum
from typing import Any, Callable, Mapping, NamedTuple, Sequence

from . import conventions as cv
from .pricing import PricingStatus
from .usage import UsageError, read_usage

__all__ = [
    "CallLedger",
    "Found",
    "NOT_COUNTED",
    "Verdict",
    "MAX_OPEN",
    "MAX_RESPONSES",
    "UsageKey",
    "decide",
    "first_same",
    "same_call",
]

#: Statuses of spans stored for context and never summed: another span carries their call's
#: cost (counted_elsewhere), or they sum their calls' usage (aggregate).
NOT_COUNTED = frozenset({PricingStatus.AGGREGATE.value, PricingStatus.COUNTED_ELSEWHERE.value})

# Entries hold finished spans' attributes, which may be large (prompts): the tables stay no
# bigger than the export queue that holds the same spans anyway (BatchSpanProcessor: 2048).
#: Open parents remembered with the calls that ended below them (about the requests in flight).
MAX_OPEN = 1_024
#: Response ids remembered (the spans of one call end within moments of each other).
MAX_RESPONSES = 256
#: Counting calls remembered to pair a second instrumentation's span beside them: the most
#: recent ones (a call's spans end within moments of each other).
MAX_RECENT = 64


class Verdict(NamedTuple):
    status: str  # PricingStatus value: "counted_elsewhere" or "aggregate"
    counted_on: int | None  # with counted_elsewhere: the span id that carries the cost


class Found(Enum):
    """What :func:`decide` found a span with usage to be. CALL and SUSPECT count; AGGREGATE is
    stored as ``aggregate``; every SAME_* as ``counted_elsewhere`` on the span it names."""

    CALL = "a call of its own"
    AGGREGATE = "the sum of the calls below it"
    SAME_AS_BELOW = "the call below it, traced twice"
    SAME_RESPONSE = "the call of an overlapping span with its response id"
    SAME_BESIDE = "the call of another instrumentation's overlapping span"
    SAME_AS_ABOVE = "the call of a counting span above it that arrived first"
    SUSPECT = "a call of its own below a counting span of another usage"


def decide(
    usage: UsageKey | None,
    *,
    aggregate: bool = False,
    below: Sequence[UsageKey | None] = (),
    same_response: UsageKey | None | bool = False,
    beside: Sequence[UsageKey | None] = (),
    above: Callable[[], UsageKey | None | bool] | None = None,
) -> Found:
    """The rule for one span with usage ``usage`` (None: unreadable).

    ``aggregate``: an aggregate by convention. ``below``: the usage of the counting spans
    ended below it (at most two are needed). ``same_response``: the usage of an earlier span
    with its response id that overlaps it in time (False: none). ``beside``: the usage of the
    counting spans of other instrumentations, of its provider, that ended before it and
    overlap it in time, in its trace or, when it is a root, roots of theirs. ``above``: finds the usage of
    the nearest counting span above it that arrived before it (False: none), called only when
    the rules before it decide nothing. Pure; never raises."""
    if aggregate:
        return Found.AGGREGATE
    if below:
        return Found.SAME_AS_BELOW if len(below) == 1 and same_call(below[0], usage) else Found.AGGREGATE
    if same_response is not False and same_call(same_response, usage, output_slack=1):  # type: ignore[arg-type]
        return Found.SAME_RESPONSE
    if first_same(usage, beside) is not None:
        return Found.SAME_BESIDE
    if above is not None:
        ancestor = above()
        if ancestor is not False:
            return Found.SAME_AS_ABOVE if same_call(ancestor, usage) else Found.SUSPECT  # type: ignore[arg-type]
    return Found.CALL


def first_same(usage: UsageKey | None, others: Sequence[UsageKey | None]) -> int | None:
    """The position in ``others`` of the first usage that is the same call as ``usage``
    (:func:`same_call`), or None: the span a SAME_BESIDE verdict points at."""
    for i, other in enumerate(others):
        if same_call(other, usage):
            return i
    return None


# A call: (span id, start ns, end ns, the finished span's immutable attributes, its
# instrumentation scope's name, trace id, whether it is a root). A plain tuple: made for every
# GenAI span on the app's thread, where a NamedTuple costs ~5x more.
_Call = tuple[Any, ...]
_ID, _START, _END, _ATTRS, _SCOPE, _TRACE, _ROOT = range(7)


class CallLedger:
    def __init__(self) -> None:
        self._below: dict[int, list[_Call]] = {}  # open parent span id → calls ended under it
        self._by_response: dict[str, _Call] = {}  # response id → the span that carries it
        self._recent: deque[_Call] = deque(maxlen=MAX_RECENT)  # counting calls, in the order they ended
        self._exchange: dict[int, int] = {}  # open call's span id → its HTTP exchange's span id

    def exchange_below(self, call_id: int, exchange_id: int) -> None:
        """The span ``exchange_id`` ended below the open span ``call_id`` as its HTTP
        exchange, priced from the response body (otel_costs.httpx_hooks) after the fact: the
        same call by construction, with the same usage, whose cost the exchange carries —
        ``ended`` decides the call's span as it does a call below it with its usage."""
        if len(self._exchange) >= MAX_OPEN:
            _drop_oldest(self._exchange)
        self._exchange[call_id] = exchange_id

    def ended(self, span: Any, attrs: Mapping[str, Any], has_usage: bool) -> Verdict | None:
        """Record a span that ended; for one with usage, the verdict when another span carries
        its cost (None: it carries its own). Never raises for odd attributes."""
        # The SDK's ReadableSpan fields, not its properties: this runs on the app's thread
        # for every span.
        span_id = span._context.span_id
        below = self._below.pop(span_id, None) if self._below else None
        exchange = self._exchange.pop(span_id, None) if self._exchange else None
        if not has_usage:
            self._pass_up(span, below)
            return None
        scope = span._instrumentation_scope
        me = (
            span_id,
            span._start_time or 0,
            span._end_time or 0,
            attrs,
            scope.name if scope is not None else "",
            span._context.trace_id,
            span._parent is None,
        )
        verdict: Verdict | None = None
        carriers: list[_Call] = [me]
        first: _Call | None = None
        beside: list[_Call] = []
        response_id = None
        aggregate = cv.is_aggregate(attrs)
        if exchange is not None:  # the call's own HTTP exchange: the one call below it, with this span's facts
            below = [(exchange, *me[1:])]
        if not aggregate and not below:
            response_id = cv.response_id(attrs)
            if response_id:
                first = self._by_response.get(response_id)
                if first is not None and not (first[_START] <= me[_END] and me[_START] <= first[_END]):
                    first = None
            if first is None and self._recent:
                beside = self._beside(me)
        if aggregate or below or first is not None or beside:  # something to compare: read the usage
            usage = usage_key(attrs)
            keys = [usage_key(call[_ATTRS]) if _same_provider(call[_ATTRS], attrs) else None for call in beside]
            found = decide(
                usage,
                aggregate=aggregate,
                below=[usage_key(call[_ATTRS]) for call in below or ()],
                same_response=usage_key(first[_ATTRS]) if first is not None else False,
                beside=keys,
            )
            if found is Found.AGGREGATE:
                verdict, carriers = Verdict(PricingStatus.AGGREGATE.value, None), below or []
            elif found is Found.SAME_AS_BELOW:
                assert below is not None
                verdict, carriers = Verdict(PricingStatus.COUNTED_ELSEWHERE.value, below[0][_ID]), below
            elif found is Found.SAME_RESPONSE:
                assert first is not None
                verdict, carriers = Verdict(PricingStatus.COUNTED_ELSEWHERE.value, first[_ID]), [first]
            elif found is Found.SAME_BESIDE:
                other = beside[first_same(usage, keys) or 0]
                verdict, carriers = Verdict(PricingStatus.COUNTED_ELSEWHERE.value, other[_ID]), [other]
        counting = me if verdict is None and not aggregate else None
        if exchange is not None and verdict is not None and verdict.counted_on == exchange:
            # The exchange carries the call's cost: a later span of the call (an outer
            # wrapper with its response id, another instrumentation beside it) pairs with it.
            counting, response_id = carriers[0], cv.response_id(attrs)
        if counting is not None:
            self._recent.append(counting)
            if response_id:
                if len(self._by_response) >= MAX_RESPONSES:
                    _drop_oldest(self._by_response)
                self._by_response[response_id] = counting
        self._pass_up(span, carriers)
        return verdict

    def _beside(self, me: _Call) -> list[_Call]:
        """Counting calls of other instrumentations that ended before ``me`` and overlap it,
        in its trace or, for a root, roots of theirs (newest first; usage not compared yet)."""
        found = []
        for call in reversed(self._recent):
            if call[_END] < me[_START]:
                break  # ended before it started, as did every older one
            if call[_SCOPE] != me[_SCOPE] and call[_START] <= me[_END]:
                if call[_TRACE] == me[_TRACE] or (call[_ROOT] and me[_ROOT]):
                    found.append(call)
        return found

    def _pass_up(self, span: Any, calls: list[_Call] | None) -> None:
        if not calls:
            return
        parent = span._parent
        if parent is None or parent.is_remote:
            return
        pending = self._below.get(parent.span_id)
        if pending is None:
            if len(self._below) >= MAX_OPEN:
                _drop_oldest(self._below)
            pending = self._below.setdefault(parent.span_id, [])
        if len(pending) < 2:  # a job's root span may see a million calls end below it
            pending.extend(calls[: 2 - len(pending)])


#: What two spans of one call agree on: (input, cache read, cache write, output) tokens,
#: input normalised to include cache (usage.TokenUsage).
UsageKey = tuple[int, int, int, int]


def same_call(first: UsageKey | None, second: UsageKey | None, output_slack: int = 0) -> bool:
    """Whether two spans' usage is the same billed tokens, output within ``output_slack``:
    the test both sides (this ledger, otel_costs_collector.mapping.calls) apply to say two spans are one call."""
    if first is None or second is None:
        return False
    return first[:3] == second[:3] and abs(first[3] - second[3]) <= output_slack


def usage_key(attrs: Mapping[str, Any]) -> UsageKey | None:
    try:
        usage = read_usage(attrs)
    except UsageError:
        return None
    if usage is None:
        return None
    return (usage.input_tokens, usage.cache_read_tokens, usage.cache_write_tokens, usage.output_tokens)


def _same_provider(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    try:
        first, second = read_usage(a), read_usage(b)
    except UsageError:
        return False
    return first is not None and second is not None and first.provider == second.provider


def _drop_oldest(table: dict[Any, Any]) -> None:
    for key in list(table)[: max(1, len(table) // 10)]:  # a tenth at a time: amortised
        table.pop(key, None)
