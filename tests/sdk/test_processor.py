"""CostSpanProcessor on a real TracerProvider: attribution, cost, forwarding, bad input."""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from decimal import Decimal

import pytest
from genai_prices import Usage, calc_price
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otel_costs import CostSpanProcessor, attribute_to, record_usage
from otel_costs.pricing import Pricer
from otel_costs.usage import read_usage

GENAI = {
    "gen_ai.operation.name": "chat",
    "gen_ai.provider.name": "openai",
    "gen_ai.request.model": "gpt-4o-mini",
    "gen_ai.usage.input_tokens": 1200,
    "gen_ai.usage.output_tokens": 300,
    "gen_ai.usage.cache_read.input_tokens": 1000,
}
# gpt-4o-mini: 200 uncached × $0.15/M + 1000 cached × $0.075/M + 300 × $0.60/M
GENAI_COST = Decimal("0.000285")


def test_genai_span_gets_exact_cost_and_attribution(traced):
    with attribute_to(user_id="u1", tenant_id="acme", feature="chat", plan="pro"):
        span = traced.span_with(GENAI)
    attrs = span.attributes
    assert Decimal(attrs["otel_costs.cost.total"]) == GENAI_COST
    assert Decimal(attrs["otel_costs.cost.input"]) == Decimal("0.00003")
    assert Decimal(attrs["otel_costs.cost.cache_read"]) == Decimal("0.000075")
    assert Decimal(attrs["otel_costs.cost.output"]) == Decimal("0.00018")
    assert "otel_costs.cost.cache_write" not in attrs  # zero parts are left out
    assert attrs["gen_ai.usage.cost"] == float(GENAI_COST)
    assert attrs["otel_costs.cost.currency"] == "USD"
    assert attrs["otel_costs.pricing.status"] == "priced"
    assert attrs["otel_costs.pricing.source"].startswith("genai-prices ")
    assert attrs["otel_costs.pricing.model"] == "gpt-4o-mini"
    assert (attrs["user.id"], attrs["tenant.id"], attrs["feature.name"], attrs["otel_costs.tag.plan"]) == (
        "u1",
        "acme",
        "chat",
        "pro",
    )
    for key, value in GENAI.items():
        assert attrs[key] == value


def test_enriched_copy_keeps_identity_and_timing(traced):
    with traced.tracer.start_as_current_span("parent"):
        with traced.tracer.start_as_current_span("call") as live:
            live.set_attributes(GENAI)
            live.add_event("first token")
    ours = [s for s in traced.spans() if s.name == "call"][0]
    app = [s for s in traced.app_exporter.get_finished_spans() if s.name == "call"][0]
    assert ours.context == app.context and ours.parent == app.parent
    assert (ours.start_time, ours.end_time, ours.kind, ours.status.status_code) == (
        app.start_time,
        app.end_time,
        app.kind,
        app.status.status_code,
    )
    assert [e.name for e in ours.events] == ["first token"]
    assert ours.resource == app.resource and ours.instrumentation_scope == app.instrumentation_scope
    assert "otel_costs.cost.total" not in app.attributes  # the app's own span is untouched
    assert ours.dropped_attributes == app.dropped_attributes == 0
    assert '"otel_costs.cost.total"' in ours.to_json()


def test_attribution_on_every_span_but_only_genai_forwarded_by_default(traced):
    with attribute_to(tenant_id="acme"):
        with traced.tracer.start_as_current_span("GET /items"):
            pass
        traced.span_with(GENAI)
    assert [s.name for s in traced.spans()] == ["call"]
    app_spans = {s.name: s for s in traced.app_exporter.get_finished_spans()}
    assert app_spans["GET /items"].attributes["tenant.id"] == "acme"


def test_forward_all(make_traced):
    t = make_traced(forward="all")
    with t.tracer.start_as_current_span("GET /items"):
        pass
    t.span_with(GENAI)
    spans = t.spans()
    assert [s.name for s in spans] == ["GET /items", "call"]
    assert "otel_costs.pricing.status" not in spans[0].attributes


def test_forward_from_env(monkeypatch, make_traced):
    monkeypatch.setenv("OTEL_COSTS_FORWARD", "all")
    t = make_traced()
    with t.tracer.start_as_current_span("plain"):
        pass
    assert len(t.spans()) == 1


@pytest.mark.parametrize("bad", ["some", "", 3])
def test_bad_forward_option(bad, monkeypatch):
    monkeypatch.setenv("OTEL_COSTS_FORWARD", "none")
    with pytest.raises((ValueError, AttributeError)):
        CostSpanProcessor(InMemorySpanExporter(), forward=bad)


@pytest.mark.parametrize(
    "override, status, error",
    [
        ({"gen_ai.usage.input_tokens": "1200"}, "invalid_usage", "expected an integer token count, got str"),
        ({"gen_ai.usage.input_tokens": -1}, "invalid_usage", "negative"),
        ({"gen_ai.usage.output_tokens": float("nan")}, "invalid_usage", "got nan"),
        ({"gen_ai.usage.input_tokens": 10**12}, "invalid_usage", "exceeds"),
        (
            {
                "gen_ai.usage.cache_read.input_tokens": 5000,
                "gen_ai.provider.name": "openai",
                "gen_ai.usage.input_tokens": 10,
            },
            "priced",
            None,
        ),  # cache > input: exclusive inferred
        ({"gen_ai.request.model": "no-such-model"}, "unpriced", "Unable to find model"),
        ({"gen_ai.request.model": True}, "unpriced", "no model name"),
    ],
)
def test_malformed_attributes_are_marked_never_raised(traced, override, status, error):
    span = traced.span_with({**GENAI, **override})
    attrs = span.attributes
    assert attrs["otel_costs.pricing.status"] == status
    if error:
        assert error in attrs["otel_costs.pricing.error"]
    if status != "priced":
        assert "otel_costs.cost.total" not in attrs and "gen_ai.usage.cost" not in attrs


def test_already_priced_span_is_not_repriced(traced):
    span = traced.span_with({**GENAI, "otel_costs.pricing.status": "priced", "otel_costs.cost.total": "1.5"})
    assert span.attributes["otel_costs.cost.total"] == "1.5"


class Exploding(SpanProcessor):
    def __init__(self):
        self.calls = 0

    def on_end(self, span):
        self.calls += 1
        raise RuntimeError("downstream bug")

    def force_flush(self, timeout_millis=30000):
        raise RuntimeError("flush bug")

    def shutdown(self):
        raise RuntimeError("shutdown bug")


def test_downstream_failures_never_reach_the_app(caplog):
    exploding, memory = Exploding(), InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(CostSpanProcessor(exploding, SimpleSpanProcessor(memory)))
    with caplog.at_level(logging.ERROR, logger="otel_costs"):
        with provider.get_tracer("t").start_as_current_span("call") as span:
            span.set_attributes(GENAI)
        assert provider.force_flush() is False
        provider.shutdown()
    assert exploding.calls == 1
    assert len(memory.get_finished_spans()) == 1  # the other downstream still got it
    assert "downstream on_end failed" in caplog.text


def test_pricing_bug_still_exports_the_span(traced, monkeypatch, caplog):
    def broken(self, usage, at_ns=None):
        raise ZeroDivisionError("bug")

    monkeypatch.setattr(Pricer, "price", broken)
    with caplog.at_level(logging.ERROR, logger="otel_costs"):
        span = traced.span_with(GENAI)
    assert span.attributes["otel_costs.pricing.status"] == "unpriced"
    assert "ZeroDivisionError" in span.attributes["otel_costs.pricing.error"]
    assert span.attributes["gen_ai.usage.input_tokens"] == 1200


def test_exporter_downstream_is_batched():
    memory = InMemorySpanExporter()
    processor = CostSpanProcessor(memory)
    assert isinstance(processor._downstream[0], BatchSpanProcessor)
    provider = TracerProvider()
    provider.add_span_processor(processor)
    with provider.get_tracer("t").start_as_current_span("call") as span:
        span.set_attributes(GENAI)
    provider.force_flush()
    assert Decimal(memory.get_finished_spans()[0].attributes["otel_costs.cost.total"]) == GENAI_COST
    provider.shutdown()


def test_default_downstream_is_otlp_grpc(monkeypatch):
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:1")
    processor = CostSpanProcessor()
    (bsp,) = processor._downstream
    assert type(bsp._batch_processor._exporter).__module__.endswith("proto.grpc.trace_exporter")
    assert bsp._batch_processor._schedule_delay == 0.5
    processor.shutdown()


def test_wrong_downstream_type():
    with pytest.raises(TypeError, match="SpanProcessor or SpanExporter"):
        CostSpanProcessor(object())


def test_attribute_limits_are_respected():
    from opentelemetry.sdk.trace import SpanLimits

    memory = InMemorySpanExporter()
    provider = TracerProvider(span_limits=SpanLimits(max_span_attributes=4, max_attribute_length=5))
    provider.add_span_processor(CostSpanProcessor(SimpleSpanProcessor(memory), forward="all"))
    with attribute_to(user_id="user-123456", tenant_id="acme", feature="chat", plan="pro"):
        with provider.get_tracer("t").start_as_current_span("s", attributes={"a": 1, "b": 2, "c": 3}):
            pass
    attrs = memory.get_finished_spans()[0].attributes
    assert len(attrs) == 4
    assert all(len(v) <= 5 for v in attrs.values() if isinstance(v, str))
    provider.shutdown()


def test_record_usage_emits_a_costed_span_under_attribution(traced):
    with attribute_to(user_id="batch", feature="nightly-summary"):
        record_usage(
            provider="anthropic",
            model="claude-sonnet-4-5",
            input_tokens=12_000,
            output_tokens=300,
            cache_read_tokens=10_000,
            tracer_provider=traced.provider,
            start_time=1_760_000_000_000_000_000,
            end_time=1_760_000_002_000_000_000,
        )
    span = traced.only()
    assert span.name == "chat claude-sonnet-4-5"
    assert (span.start_time, span.end_time) == (1_760_000_000_000_000_000, 1_760_000_002_000_000_000)
    # 2000 × $3/M + 10000 × $0.30/M + 300 × $15/M
    assert Decimal(span.attributes["otel_costs.cost.total"]) == Decimal("0.0135")
    assert span.attributes["feature.name"] == "nightly-summary"
    assert read_usage(span.attributes).input_tokens == 12_000


@pytest.mark.parametrize(
    "served, context, extra",
    [
        ({"batch": True}, {"processing": "batch"}, {}),
        ({"service_tier": "flex"}, {"service_tier": "flex"}, {}),
        ({"service_tier": "priority"}, {"service_tier": "priority"}, {"web_searches": 2}),
        ({}, None, {"web_searches": 1}),
    ],
    ids=["batch-api", "flex", "priority-with-searches", "searches"],
)
def test_record_usage_prices_the_tier_and_units_the_provider_billed(traced, served, context, extra):
    """A batch job's results read from the provider's files, a tier, web searches: priced as
    calc_price prices them with the matching price_context."""
    at = 1_796_000_000_000_000_000  # 2026-11-29: after the variants' start dates
    record_usage(
        provider="openai",
        model="gpt-5",
        input_tokens=12_000,
        output_tokens=3_000,
        cache_read_tokens=4_000,
        tracer_provider=traced.provider,
        start_time=at,
        **served,
        **extra,
    )
    span = traced.only()
    expected = calc_price(
        Usage(input_tokens=12_000, output_tokens=3_000, cache_read_tokens=4_000, **extra),
        "gpt-5",
        provider_id="openai",
        genai_request_timestamp=datetime.fromtimestamp(at / 1e9, timezone.utc),
        price_context=context,
    )
    assert Decimal(span.attributes["otel_costs.cost.total"]) == expected.total_price
    assert span.attributes.get("otel_costs.pricing.tier") == (
        None if context is None else (served.get("service_tier") or "batch")
    )


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"cache_write_tokens": 10, "cache_write_1h_tokens": 11}, "part of cache_write_tokens"),
        ({"web_searches": -1}, "web_searches=-1"),
        ({"service_tier": ""}, "service_tier"),
        ({"batch": "yes"}, "batch must be True or False"),
        ({"provider_cost": 0.1}, "never a float|not a float|a Decimal"),
        ({"provider_cost": "-1"}, "outside"),
    ],
)
def test_record_usage_refuses_impossible_units(traced, kwargs, message):
    with pytest.raises(ValueError, match=message):
        record_usage(
            provider="openai",
            model="gpt-5",
            input_tokens=100,
            output_tokens=1,
            tracer_provider=traced.provider,
            **kwargs,
        )
    assert traced.spans() == []


def test_record_usage_counts_the_provider_s_bill(traced):
    record_usage(
        provider="openai",
        model="gpt-4o-mini",
        input_tokens=1000,
        output_tokens=100,
        provider_cost="0.00012",
        tracer_provider=traced.provider,
    )
    attrs = traced.only().attributes
    estimate = calc_price(Usage(input_tokens=1000, output_tokens=100), "gpt-4o-mini", provider_id="openai").total_price
    assert Decimal(attrs["otel_costs.cost.total"]) == Decimal("0.00012")
    assert Decimal(attrs["otel_costs.cost.adjustment"]) == Decimal("0.00012") - estimate
    assert attrs["gen_ai.usage.cost.source"] == "provider"


def test_record_usage_error_marks_the_span(traced):
    record_usage(
        provider="openai",
        model="gpt-4o-mini",
        input_tokens=10,
        output_tokens=0,
        error="timeout",
        tracer_provider=traced.provider,
    )
    span = traced.only()
    assert span.status.status_code.name == "ERROR"
    assert span.attributes["error.type"] == "timeout"


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"input_tokens": -1}, "outside"),
        ({"input_tokens": "10"}, "must be an int"),
        ({"output_tokens": True}, "must be an int"),
        ({"cache_read_tokens": 50}, "cannot exceed"),
        ({"reasoning_tokens": 99}, "cannot be smaller"),
        ({"model": ""}, "model must be"),
        ({"provider": None}, "provider must be"),
    ],
)
def test_record_usage_validates(traced, kwargs, message):
    args = dict(provider="openai", model="gpt-4o-mini", input_tokens=10, output_tokens=5)
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        record_usage(tracer_provider=traced.provider, **args)
    assert traced.spans() == []
