"""One cost per provider call, as a process's spans end (children before parents).

Real stacks put one call on several spans: two instrumentations of the same call, nested
(OpenInference's Anthropic span around the anthropic SDK's own) or side by side (OpenLLMetry's
beside the SDK's, in another trace), and aggregates above the calls (agents, workflows, an
SDK's outer span) that carry the sum of their calls' usage. :class:`CallLedger` decides, for a
span with usage that just ended:

* usage spans ended below it (children first): one with the same usage → the same call, the
  inner span carries the cost and this one is ``counted_elsewhere``; otherwise → ``aggregate``;
* else the same response id (``gen_ai.response.id``) as a span that ended before and overlaps
  it in time, with the same usage → ``counted_elsewhere``, pointing at that span. The time
  overlap and the usage keep a server that reuses ids from folding separate calls into one;
  one output token of slack allows for OpenLLMetry's Anthropic streams, which count
  ``message_start``'s output token twice (the span that ends first carries the cost: the
  anthropic SDK's, inside OpenLLMetry's wrapper).

Usage is read only to compare two spans, so the common span costs a few dict lookups on the
app's thread. Memory is bounded: :data:`MAX_OPEN` parents with at most two calls ended
below each (one or "more than one" is all a verdict needs), :data:`MAX_RESPONSES` response
ids, oldest dropped first; entries hold the finished spans' attribute mappings.
Thread-safety: only dict and list operations that are atomic under the GIL; no locks, no I/O.
"""

from __future__ import annotations

from typing import Any, Mapping, NamedTuple

from . import conventions as cv
from .usage import UsageError, read_usage

__all__ = ["CallLedger", "Verdict", "MAX_OPEN", "MAX_RESPONSES", "UsageKey", "same_call"]

# Entries hold finished spans' attributes, which may be large (prompts): the tables stay no
# bigger than the export queue that holds the same spans anyway (BatchSpanProcessor: 2048).
#: Open parents remembered with the calls that ended below them (about the requests in flight).
MAX_OPEN = 1_024
#: Response ids remembered (the spans of one call end within moments of each other).
MAX_RESPONSES = 256


class Verdict(NamedTuple):
    status: str  # PricingStatus value: "counted_elsewhere" or "aggregate"
    counted_on: int | None  # with counted_elsewhere: the span id that carries the cost


# A call: (span id, start ns, end ns, the finished span's immutable attributes). A plain
# tuple: made for every GenAI span on the app's thread, where a NamedTuple costs ~5x more.
_Call = tuple[Any, ...]
_ID, _START, _END, _ATTRS = range(4)


class CallLedger:
    def __init__(self) -> None:
        self._below: dict[int, list[_Call]] = {}  # open parent span id → calls ended under it
        self._by_response: dict[str, _Call] = {}  # response id → the span that carries it

    def ended(self, span: Any, attrs: Mapping[str, Any], has_usage: bool) -> Verdict | None:
        """Record a span that ended; for one with usage, the verdict when another span carries
        its cost (None: it carries its own). Never raises for odd attributes."""
        # The SDK's ReadableSpan fields, not its properties: this runs on the app's thread
        # for every span.
        span_id = span._context.span_id
        below = self._below.pop(span_id, None) if self._below else None
        if not has_usage:
            self._pass_up(span, below)
            return None
        me = (span_id, span._start_time or 0, span._end_time or 0, attrs)
        verdict: Verdict | None = None
        carriers: list[_Call] = [me]
        if cv.is_aggregate(attrs):
            verdict, carriers = Verdict("aggregate", None), below or []
        elif below:
            if len(below) == 1 and _same_usage(below[0][_ATTRS], attrs):
                verdict, carriers = Verdict("counted_elsewhere", below[0][_ID]), below
            else:
                verdict, carriers = Verdict("aggregate", None), below
        else:
            response_id = cv.response_id(attrs)
            if response_id:
                first = self._by_response.get(response_id)
                if (
                    first is not None
                    and first[_START] <= me[_END]
                    and me[_START] <= first[_END]
                    and _same_usage(first[_ATTRS], attrs, output_slack=1)
                ):
                    verdict, carriers = Verdict("counted_elsewhere", first[_ID]), [first]
                else:
                    if len(self._by_response) >= MAX_RESPONSES:
                        _drop_oldest(self._by_response)
                    self._by_response[response_id] = me
        self._pass_up(span, carriers)
        return verdict

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


def _same_usage(a: Mapping[str, Any], b: Mapping[str, Any], output_slack: int = 0) -> bool:
    return same_call(usage_key(a), usage_key(b), output_slack)


def _drop_oldest(table: dict[Any, Any]) -> None:
    for key in list(table)[: max(1, len(table) // 10)]:  # a tenth at a time: amortised
        table.pop(key, None)
