"""One cost per provider call whatever instrumentations an app combines: the anthropic SDK's
own tracing beside OpenInference's (nested) or OpenLLMetry's (side by side, same response id)
Anthropic instrumentation, all real, against a loopback fake of the Messages API; and spans
whose usage is the sum of the calls below them."""

from __future__ import annotations

from decimal import Decimal

import pytest
from genai_prices import Usage, calc_price
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otel_costs import counting

from .test_anthropic_sdk import CALL, Messages, billed, call
from .test_httpx_hooks import serving

anthropic = pytest.importorskip("anthropic")


def instrumentor(name: str):
    if name == "openinference":
        from openinference.instrumentation.anthropic import AnthropicInstrumentor
    else:
        from opentelemetry.instrumentation.anthropic import AnthropicInstrumentor
    return AnthropicInstrumentor()


def calls_through(traced, other: str, stream: bool = False, calls: int = 1, headers: dict | None = None) -> None:
    """``calls`` calls through the real anthropic client, traced by its own tracing and by
    the instrumentation ``other``, against the loopback fake (``headers``: how it serves them)."""
    instr = instrumentor(other)
    instr.instrument(tracer_provider=traced.provider)
    try:
        with serving(Messages) as url:
            client = anthropic.Anthropic(
                base_url=url + "/anthropic",
                api_key="test",
                max_retries=0,
                open_telemetry={"tracer_provider": traced.provider},
                default_headers=headers or {},
            )
            for _ in range(calls):
                call(client, stream)
            client.close()
    finally:
        instr.uninstrument()


@pytest.mark.parametrize("calls", [1, 3])
@pytest.mark.parametrize("stream", [False, True], ids=["create", "stream"])
@pytest.mark.parametrize("other", ["openinference", "openllmetry"])
def test_the_sdks_span_and_an_instrumentations_span_count_one_call_once(traced, other, stream, calls):
    calls_through(traced, other, stream, calls)  # the fake answers every call with the same response id
    spans = [s for s in traced.spans() if "otel_costs.pricing.status" in s.attributes]
    assert len(spans) == 2 * calls, [(s.name, dict(s.attributes)) for s in spans]
    costed = [s for s in spans if "otel_costs.cost.total" in s.attributes]
    elsewhere = [s for s in spans if s.attributes["otel_costs.pricing.status"] == "counted_elsewhere"]
    assert len(costed) == len(elsewhere) == calls
    assert all(Decimal(s.attributes["otel_costs.cost.total"]) == CALL for s in costed)
    assert {s.attributes["otel_costs.cost.counted_on"] for s in elsewhere} == {
        f"{s.context.span_id:016x}" for s in costed
    }


def test_a_span_whose_usage_sums_its_calls_is_an_aggregate(traced):
    """Not an aggregate by its convention: by the trace, as its calls end below it."""
    call = {
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.operation.name": "chat",
        "gen_ai.usage.input_tokens": 1000,
        "gen_ai.usage.output_tokens": 100,
    }
    total = {**call, "gen_ai.usage.input_tokens": 2000, "gen_ai.usage.output_tokens": 200}
    with traced.tracer.start_as_current_span("pipeline", attributes=total):
        with traced.tracer.start_as_current_span("step"):  # no usage of its own
            for name in ("call-1", "call-2"):
                with traced.tracer.start_as_current_span(name, attributes=call):
                    pass
    spans = {s.name: dict(s.attributes) for s in traced.spans()}
    one = calc_price(Usage(input_tokens=1000, output_tokens=100), model_ref="gpt-4o-mini", provider_id="openai")
    assert [Decimal(spans[n]["otel_costs.cost.total"]) for n in ("call-1", "call-2")] == [one.total_price] * 2
    assert spans["pipeline"]["otel_costs.pricing.status"] == "aggregate"
    assert "otel_costs.cost.total" not in spans["pipeline"]


def test_memory_is_bounded():
    from opentelemetry.trace import SpanContext

    class Ended:  # a finished span whose parent is in this process and never ends
        def __init__(self, i):
            self._context = SpanContext(1, i + 1, False)
            self._parent = SpanContext(1, 10_000_000 + i, False)
            self._start_time, self._end_time = i, i + 1
            self._instrumentation_scope = None

    usage = {"gen_ai.usage.input_tokens": 1, "gen_ai.usage.output_tokens": 1}
    ledger = counting.CallLedger()
    for i in range(3 * counting.MAX_OPEN):
        ledger.ended(Ended(i), {**usage, "gen_ai.response.id": f"r{i}"}, True)
    assert len(ledger._below) <= counting.MAX_OPEN and len(ledger._by_response) <= counting.MAX_RESPONSES
    assert len(ledger._recent) <= counting.MAX_RECENT
    job = counting.CallLedger()  # a long job's root span, open while 100k calls end below it
    for i in range(100_000):
        call = Ended(i)
        call._parent = SpanContext(1, 42, False)
        job.ended(call, usage, True)
    assert len(job._below[42]) == 2


class _ReadsAtOnce(InMemorySpanExporter):
    """An exporter that encodes each span as it ends (SimpleSpanProcessor with OTLP does)."""

    def export(self, spans):
        for span in spans:
            dict(span.attributes)
        return super().export(spans)


@pytest.mark.parametrize("exported", ["later", "at once"])
def test_the_counted_span_takes_the_billed_facts_of_the_span_around_it(make_traced, exported, caplog):
    """OpenInference's span around the anthropic SDK's own keeps the call's web searches (in
    its metadata); the SDK's span, which counts, does not: it takes them before it is priced.
    Exported as it ends (read before the outer span ended), it cannot: the outer span says so."""
    traced = make_traced()
    if exported == "at once":
        traced.exporter = _ReadsAtOnce()
        traced.processor._downstream = (SimpleSpanProcessor(traced.exporter),)
    calls_through(traced, "openinference", headers={"x-web-searches": "2"})  # the fake runs two web searches
    (costed,) = [s for s in traced.spans() if "otel_costs.cost.total" in s.attributes]
    (elsewhere,) = [s for s in traced.spans() if s.attributes.get("otel_costs.pricing.status") == "counted_elsewhere"]
    total = Decimal(costed.attributes["otel_costs.cost.total"])
    if exported == "later":
        assert total == billed(web_searches=2)
        assert "otel_costs.pricing.error" not in elsewhere.attributes
    else:
        assert total == CALL  # priced before the searches were known
        assert "web_searches=2" in elsewhere.attributes["otel_costs.pricing.error"]
        assert [r.levelname for r in caplog.records if "web_searches=2" in r.getMessage()] == ["WARNING"]
