"""An aggregate span (agent, workflow, an SDK's outer span) is marked ``aggregate`` with no
cost; the call under it is priced once, at genai-prices' price."""

from __future__ import annotations

from decimal import Decimal

import pytest
from genai_prices import Usage, calc_price

from otel_costs import record_usage
from tests.aggregates import SHAPES

CALL = calc_price(Usage(input_tokens=1800, output_tokens=120), model_ref="gpt-4o-mini", provider_id="openai")


@pytest.mark.parametrize("shape", SHAPES.values(), ids=SHAPES.keys())
def test_the_outer_span_is_an_aggregate_and_the_call_is_priced_once(traced, shape):
    outer, inner = shape
    with traced.tracer.start_as_current_span("outer", attributes=outer):
        with traced.tracer.start_as_current_span("call", attributes=inner):
            pass
    spans = {s.name: dict(s.attributes) for s in traced.spans()}
    assert spans["outer"]["otel_costs.pricing.status"] == "aggregate"
    assert not [k for k in spans["outer"] if k.startswith("otel_costs.cost.")]
    assert spans["call"]["otel_costs.pricing.status"] == "priced"
    assert Decimal(spans["call"]["otel_costs.cost.total"]) == CALL.total_price


def test_record_usage_refuses_an_operation_that_is_not_a_call(traced):
    with pytest.raises(ValueError, match="invoke_agent.*never counted"):
        record_usage(
            provider="openai",
            model="gpt-4o-mini",
            input_tokens=1,
            output_tokens=1,
            operation="invoke_agent",
            tracer_provider=traced.provider,
        )
    assert traced.spans() == []
