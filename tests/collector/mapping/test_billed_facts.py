"""otel_costs_collector.mapping.billed_facts through HeldCalls: the counted row of a call takes
the billed facts (tier, web searches) the call's other spans say, priced once; a span whose
counted row was stored before it came says what it could not add."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

import pytest
from genai_prices import Usage, calc_price

from otel_costs_collector.mapping.calls import CallIndex
from otel_costs_collector.mapping.rows import map_request
from otel_costs_collector.pipeline.held import HeldCalls

from .test_calls import CHAT, OPENINFERENCE, PRICER, T0, Trace, col

# OpenLLMetry's OpenAI span of the call, with the tier it was served at (OpenInference's says none)
TIERED = {**CHAT, "openai.response.service_tier": "priority"}
# OpenInference's Anthropic span keeps the web searches in its metadata; the SDK's inside it does not
ANTHROPIC = {
    "gen_ai.provider.name": "anthropic",
    "gen_ai.request.model": "claude-sonnet-4-5",
    "gen_ai.usage.input_tokens": 3000,
    "gen_ai.usage.output_tokens": 250,
}
ANTHROPIC_OPENINFERENCE = {
    "openinference.span.kind": "LLM",
    "llm.provider": "anthropic",
    "llm.model_name": "claude-sonnet-4-5",
    "llm.token_count.prompt": 3000,
    "llm.token_count.completion": 250,
    "metadata": '{"server_tool_use": {"web_search_requests": 3}}',
}


def billed(input_tokens: int, output_tokens: int, model: str, provider: str, **facts) -> Decimal:
    tier = facts.get("tier")
    return calc_price(
        Usage(input_tokens=input_tokens, output_tokens=output_tokens, web_searches=facts.get("searches", 0)),
        model_ref=model,
        provider_id=provider,
        price_context={"service_tier": tier} if tier else None,
        genai_request_timestamp=datetime.fromtimestamp(T0 / 1e9, timezone.utc),  # when the spans ran
    ).total_price


CASES = {
    # inner counted span (no facts) ← outer span with the facts
    "openai tier": (OPENINFERENCE, TIERED, billed(1800, 120, "gpt-4o-mini", "openai", tier="priority")),
    "anthropic searches": (
        ANTHROPIC,
        ANTHROPIC_OPENINFERENCE,
        billed(3000, 250, "claude-sonnet-4-5", "anthropic", searches=3),
    ),
}


#: Attribution on the calls: rows that have it never wait for an ancestor's.
WHO = {"user.id": "u_1", "tenant.id": "acme"}


def _stored(held: HeldCalls, *requests) -> list:
    rows = []
    for i, request in enumerate(requests):
        result = map_request(request, PRICER)
        rows += held.before(result.rows, result.links, f"t{i}", result.facts)
        held.after(f"t{i}")
    return rows


@pytest.mark.parametrize("case", CASES)
def test_the_counted_row_takes_the_facts_of_the_span_around_it(tmp_path, case):
    inner, outer, want = CASES[case]
    trace = Trace()
    rows = _stored(
        HeldCalls(CallIndex(), str(tmp_path), PRICER),
        trace.request(("call", "wrap", inner, 0.1, 0.9), ("wrap", "", outer, 0.0, 1.0)),
    )
    counted = [row for row in rows if col(row, "pricing_status") == "priced"]
    assert [col(row, "span_name") for row in counted] == ["call"]
    assert col(counted[0], "cost_total") == want
    assert (col(counted[0], "service_tier"), col(counted[0], "web_searches")) == (
        ("priority", 0) if case == "openai tier" else ("standard", 3)
    )
    assert sum(col(row, "cost_total") for row in rows) == want


def test_without_a_pricer_the_counted_row_keeps_its_own_facts(tmp_path):
    inner, outer, want = CASES["anthropic searches"]
    rows = _stored(
        HeldCalls(CallIndex(), str(tmp_path)),
        Trace().request(("call", "wrap", inner, 0.1, 0.9), ("wrap", "", outer, 0.0, 1.0)),
    )
    assert sum(col(row, "cost_total") for row in rows) == billed(3000, 250, "claude-sonnet-4-5", "anthropic") != want


def test_a_replay_merges_as_the_first_attempt_did(tmp_path):
    inner, outer, want = CASES["anthropic searches"]
    request = Trace().request(("call", "wrap", inner, 0.1, 0.9), ("wrap", "", outer, 0.0, 1.0))
    result = map_request(request, PRICER)
    first = HeldCalls(CallIndex(), str(tmp_path), PRICER).before(result.rows, result.links, "t0", result.facts)
    # the insert did not return (a crash): a new process replays the batch, as decided
    result = map_request(request, PRICER)
    again = HeldCalls(CallIndex(), str(tmp_path), PRICER).before(result.rows, result.links, "t0", result.facts)
    assert again == first
    assert sum(col(row, "cost_total") for row in again) == want


def test_facts_that_come_after_their_counted_row_was_stored_are_said(tmp_path):
    inner, outer, _ = CASES["openai tier"]
    trace = Trace()
    held = HeldCalls(CallIndex(), str(tmp_path), PRICER)
    first, second = _stored(
        held, trace.request(("call", "wrap", {**inner, **WHO}, 0.1, 0.9)), trace.request(("wrap", "", outer, 0.0, 1.0))
    )
    assert col(first, "cost_total") == billed(1800, 120, "gpt-4o-mini", "openai")  # stored before the facts came
    assert col(second, "pricing_status") == "counted_elsewhere"
    assert "service_tier=priority" in col(second, "pricing_error")
    assert held.facts_lost == 1
