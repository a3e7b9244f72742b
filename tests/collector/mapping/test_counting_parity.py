"""One rule, two places: the same spans, priced by the SDK's CostSpanProcessor in the app and
sent unpriced to a real collector (as another language's SDK sends them), get the same
verdict on every span — which spans count, which are aggregates, which are counted on which
other span (otel_costs.counting.decide)."""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any, Callable

import httpx
import pytest
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otel_costs import CostSpanProcessor
from otel_costs import conventions as cv
from otel_costs.counting import NOT_COUNTED

T0 = (time.time_ns() // 10**9 - 3600) * 10**9  # an hour ago (raw rows keep 90 days); spans placed in ms after it
MS = 10**6


def usage(i: int, o: int, **extra: Any) -> dict[str, Any]:
    return {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.usage.input_tokens": i,
        "gen_ai.usage.output_tokens": o,
        **extra,
    }


def span(tracer, name: str, start: int, end: int, attrs: dict[str, Any], parent=None, children: Callable = None):
    """A span from ``start`` to ``end`` ms after T0, children started inside it (they end first)."""
    context = trace.set_span_in_context(parent) if parent is not None else None
    s = tracer.start_span(name, context=context, attributes=attrs, start_time=T0 + start * MS)
    if children:
        children(s)
    s.end(end_time=T0 + end * MS)
    return s


def nested_same_usage(t, o):
    span(t, "outer", 0, 100, usage(500, 50), children=lambda p: span(t, "inner", 10, 90, usage(500, 50), p))


def agent_over_two_calls(t, o):
    def calls(p):
        span(t, "chat 1", 10, 40, usage(300, 30), p)
        span(t, "chat 2", 50, 90, usage(200, 20), p)

    span(t, "invoke_agent", 0, 100, usage(500, 50, **{"gen_ai.operation.name": "invoke_agent"}), children=calls)


def outer_span_summing_two_calls(t, o):
    def calls(p):
        span(t, "chat 1", 10, 40, usage(300, 30), p)
        span(t, "chat 2", 50, 90, usage(200, 20), p)

    span(t, "workflow", 0, 100, usage(500, 50), children=calls)


def wrapper_of_another_usage(t, o):
    span(t, "outer", 0, 100, usage(900, 90), children=lambda p: span(t, "inner", 10, 90, usage(500, 50), p))


def through_a_span_without_usage(t, o):
    def middle(p):
        span(t, "http", 5, 95, {"http.request.method": "POST"}, p, lambda m: span(t, "call", 10, 90, usage(42, 7), m))

    span(t, "outer", 0, 100, usage(42, 7), children=middle)


def same_response_overlapping(t, o):
    span(t, "sdk span", 0, 80, usage(700, 70, **{"gen_ai.response.id": "resp-1"}))
    span(t, "wrapper span", 5, 100, usage(700, 70, **{"gen_ai.response.id": "resp-1"}))


def same_response_one_output_token_apart(t, o):
    span(t, "sdk span", 0, 80, usage(700, 70, **{"gen_ai.response.id": "resp-2"}))
    span(t, "stream span", 5, 100, usage(700, 71, **{"gen_ai.response.id": "resp-2"}))


def same_response_apart_in_time(t, o):
    span(t, "first", 0, 50, usage(700, 70, **{"gen_ai.response.id": "resp-3"}))
    span(t, "second", 60, 100, usage(700, 70, **{"gen_ai.response.id": "resp-3"}))


def two_calls_alike_at_once(t, o):
    span(t, "call a", 0, 100, usage(100, 10))
    span(t, "call b", 0, 100, usage(100, 10))


def two_instrumentations_side_by_side_as_roots(t, o):
    """The anthropic SDK's own span and OpenInference's messages.stream span: each the root of
    its own trace, one wrapping the other in time, no response id on the outer one."""
    span(t, "anthropic.messages.create", 5, 95, usage(3600, 250, **{"gen_ai.response.id": "msg_1"}))
    span(o, "messages.stream", 0, 100, usage(3600, 250))


def two_instrumentations_side_by_side_in_one_trace(t, o):
    def calls(p):
        span(t, "chat gpt-4o-mini", 10, 90, usage(800, 80), p)
        span(o, "ChatCompletion", 5, 95, usage(800, 80), p)

    span(t, "POST /assist", 0, 100, {"http.request.method": "POST"}, children=calls)


def two_instrumentations_alike_calls_in_two_traces(t, o):
    """Separate requests of the app (each under its own request span): never one call."""
    span(
        t,
        "POST /a",
        0,
        100,
        {"http.request.method": "POST"},
        children=lambda p: span(t, "call", 5, 90, usage(300, 30), p),
    )
    span(
        o,
        "POST /b",
        0,
        100,
        {"http.request.method": "POST"},
        children=lambda p: span(o, "call", 5, 95, usage(300, 30), p),
    )


def two_instrumentations_other_provider(t, o):
    span(t, "openai call", 0, 90, usage(300, 30))
    span(o, "anthropic call", 0, 100, usage(300, 30, **{"gen_ai.provider.name": "anthropic"}))


SCENARIOS = [
    two_instrumentations_side_by_side_as_roots,
    two_instrumentations_side_by_side_in_one_trace,
    two_instrumentations_alike_calls_in_two_traces,
    two_instrumentations_other_provider,
    nested_same_usage,
    agent_over_two_calls,
    outer_span_summing_two_calls,
    wrapper_of_another_usage,
    through_a_span_without_usage,
    same_response_overlapping,
    same_response_one_output_token_apart,
    same_response_apart_in_time,
    two_calls_alike_at_once,
]


#: How many calls each scenario makes: what must count, in both places.
CALLS = {
    "nested_same_usage": 1,
    "agent_over_two_calls": 2,
    "outer_span_summing_two_calls": 2,
    "wrapper_of_another_usage": 1,
    "through_a_span_without_usage": 1,
    "same_response_overlapping": 1,
    "same_response_one_output_token_apart": 1,
    "same_response_apart_in_time": 2,
    "two_calls_alike_at_once": 2,
    "two_instrumentations_side_by_side_as_roots": 1,
    "two_instrumentations_side_by_side_in_one_trace": 1,
    "two_instrumentations_alike_calls_in_two_traces": 2,
    "two_instrumentations_other_provider": 2,
}


def record(scenario) -> tuple[list, list]:
    """The scenario's spans as the SDK priced them, and as they were made (unpriced)."""
    priced, raw = InMemorySpanExporter(), InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "parity"}))
    provider.add_span_processor(CostSpanProcessor(SimpleSpanProcessor(priced), forward="all"))
    provider.add_span_processor(SimpleSpanProcessor(raw))
    # Two instrumentations: the scenario's spans come from "parity" unless it says otherwise.
    scenario(provider.get_tracer("parity"), provider.get_tracer("another-instrumentation"))
    provider.shutdown()
    return list(priced.get_finished_spans()), list(raw.get_finished_spans())


def verdict(status: str, counted_on: str) -> tuple[str, str]:
    return (status if status in NOT_COUNTED else "counts", counted_on)


def send(c, spans: list) -> None:
    answer = httpx.post(
        c.http_url + "/v1/traces",
        content=encode_spans(spans).SerializeToString(),
        headers={"Content-Type": "application/x-protobuf"},
        timeout=30,
    )
    assert answer.status_code == 200, answer.text


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda f: f.__name__)
def test_the_sdk_and_the_collector_reach_the_same_verdicts(start_collector, scenario):
    priced, raw = record(scenario)
    by_sdk = {
        f"{s.context.span_id:016x}": verdict(s.attributes[cv.PRICING_STATUS], s.attributes.get(cv.COUNTED_ON, ""))
        for s in priced
        if cv.PRICING_STATUS in s.attributes
    }
    c = start_collector(attribution_wait_s=0)
    send(c, raw)
    by_collector = {
        span_id: verdict(status, counted_on)
        for span_id, status, counted_on in c.query("SELECT span_id, pricing_status, counted_on FROM {db}.genai_spans")
    }
    assert by_collector == by_sdk
    assert sum(v[0] == "counts" for v in by_sdk.values()) == CALLS[scenario.__name__]


@pytest.mark.parametrize("scenario", [nested_same_usage, through_a_span_without_usage], ids=lambda f: f.__name__)
def test_an_outer_span_that_arrives_first_leaves_one_call_counted(start_collector, scenario):
    """Only the collector sees a parent before its child (an exporter that sent it in an
    earlier request): the outer span counts already, so the late inner one is counted on it.
    Which span carries the call differs from the SDK's verdict; that it is counted once does not."""
    priced, raw = record(scenario)
    counted_by_sdk = [s for s in priced if s.attributes.get(cv.PRICING_STATUS) == "priced"]
    c = start_collector(attribution_wait_s=0)
    outer = [s for s in raw if s.parent is None]
    send(c, outer)
    send(c, [s for s in raw if s.parent is not None])
    rows = c.query("SELECT pricing_status, cost_total FROM {db}.genai_spans ORDER BY pricing_status")
    assert [status for status, _ in rows if status not in NOT_COUNTED] == ["priced"] and len(counted_by_sdk) == 1
    expected = Decimal(counted_by_sdk[0].attributes[cv.COST_TOTAL])
    assert [cost for status, cost in rows if status == "priced"] == [expected]


def test_a_second_instrumentations_span_after_a_restart_pairs_with_the_stored_call(start_collector):
    """The collector reloads the recent calls with their instrumentation scope: a span of the
    same call from another instrumentation, arriving after a restart, is counted elsewhere."""
    priced, raw = record(two_instrumentations_side_by_side_as_roots)
    first = [s for s in raw if s.instrumentation_scope.name == "parity"]
    c = start_collector(attribution_wait_s=0)
    send(c, first)
    c.stop()
    c = start_collector(attribution_wait_s=0)
    send(c, [s for s in raw if s not in first])
    rows = c.query("SELECT span_id, pricing_status, counted_on, scope FROM {db}.genai_spans ORDER BY scope")
    counted = f"{first[0].context.span_id:016x}"
    assert [(status, on, scope) for _, status, on, scope in rows] == [
        ("counted_elsewhere", counted, "another-instrumentation"),
        ("priced", "", "parity"),
    ]
