"""Exact prices: our compiled tables against genai-prices' own calc_price, overrides."""

from __future__ import annotations

import random
import tomllib
import warnings
from datetime import datetime, timezone
from decimal import Decimal, localcontext

import pytest
from genai_prices import Usage, calc_price
from genai_prices.data import providers

from otel_costs import PriceOverrides, PriceOverridesError, PricingStatus
from otel_costs.pricing import Pricer
from otel_costs.usage import Provenance, TokenUsage


def usage(provider, model, inp, out, cache_read=0, cache_write=0, reasoning=0, response_model=None, **extra):
    return TokenUsage(
        inp,
        out,
        cache_read,
        cache_write,
        reasoning,
        "test",
        Provenance.INCLUSIVE,
        provider,
        model,
        response_model,
        "chat",
        **extra,
    )


def ns(dt: datetime) -> int:
    return int(dt.timestamp()) * 1_000_000_000


def reference(provider, model, inp, out, cr, cw, at):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # genai-prices warns on keys some models lack
        return calc_price(
            Usage(input_tokens=inp, output_tokens=out, cache_read_tokens=cr, cache_write_tokens=cw),
            model,
            provider_id=provider,
            genai_request_timestamp=at,
        )


AT = datetime(2026, 11, 1, 12, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    "provider, model, inp, out, cr, cw",
    [
        ("openai", "gpt-4o-mini", 1200, 300, 1024, 0),  # cached input at its own rate
        ("openai", "gpt-4o-2024-08-06", 5000, 800, 0, 0),  # dated snapshot
        ("anthropic", "claude-sonnet-4-5", 12000, 300, 10000, 1500),  # cache read + write
        ("anthropic", "claude-sonnet-4-5", 250_000, 1000, 100_000, 0),  # above the 200k tier
        ("anthropic", "claude-3-5-haiku-latest", 900, 50, 0, 800),
        ("google", "gemini-2.5-pro", 300_000, 2000, 50_000, 0),  # tiered, long context
        ("google", "gemini-2.5-flash", 10_000, 500, 0, 0),
        ("deepseek", "deepseek-chat", 10_000, 500, 2000, 0),
        ("mistral", "mistral-large-latest", 3000, 400, 0, 0),
    ],
)
def test_matches_genai_prices_exactly(provider, model, inp, out, cr, cw):
    cost = Pricer().price(usage(provider, model, inp, out, cr, cw), ns(AT))
    ref = reference(provider, model, inp, out, cr, cw, AT)
    assert cost.status is PricingStatus.PRICED
    assert cost.total == ref.total_price
    assert cost.input + cost.cache_read + cost.cache_write == ref.input_price
    assert cost.output == ref.output_price
    assert cost.model == ref.model.id
    assert cost.source.startswith("genai-prices ")


def test_breakdown_prices_cache_at_its_own_rate_never_twice():
    # gpt-4o-mini: input $0.15/M, cached input $0.075/M, output $0.60/M.
    cost = Pricer().price(usage("openai", "gpt-4o-mini", 1200, 300, 1000), ns(AT))
    assert cost.input == Decimal("0.15") * 200 / 1_000_000
    assert cost.cache_read == Decimal("0.075") * 1000 / 1_000_000
    assert cost.output == Decimal("0.60") * 300 / 1_000_000
    assert cost.total == Decimal("0.000285")


def test_every_model_of_the_major_providers_matches():
    """Sweep: random usage on every model of these providers, against calc_price."""
    rng = random.Random(20261122)
    pricer = Pricer()
    checked = 0
    for provider in providers:
        if provider.id not in {"openai", "anthropic", "google", "aws", "azure", "mistral", "deepseek", "x-ai", "groq"}:
            continue
        for model in provider.models:
            inp = rng.choice([0, 1, 999, 150_000, 210_000, 1_100_000])
            cr = rng.randint(0, inp)
            cw = rng.randint(0, inp - cr)
            out = rng.randint(0, 8000)
            at = datetime(2025, rng.randint(1, 12), rng.randint(1, 28), rng.randint(0, 23), tzinfo=timezone.utc)
            try:
                ref = reference(provider.id, model.id, inp, out, cr, cw, at)
            except (ValueError, LookupError):
                continue  # usage genai-prices itself cannot price (e.g. modality splits)
            cost = pricer.price(usage(provider.id, model.id, inp, out, cr, cw), ns(at))
            assert (cost.total, cost.model) == (ref.total_price, ref.model.id), (provider.id, model.id)
            checked += 1
    assert checked > 300


#: How a call was served (TokenUsage fields) → genai-prices' price_context for it.
SERVED = [
    ({}, None),
    ({"service_tier": "default"}, None),
    ({"service_tier": "flex"}, {"service_tier": "flex"}),
    ({"service_tier": "priority"}, {"service_tier": "priority"}),
    ({"service_tier": "fast"}, {"service_tier": "fast"}),
    ({"service_tier": "batch"}, {"processing": "batch"}),  # Anthropic's usage.service_tier
    ({"batch": True}, {"processing": "batch"}),
]


@pytest.mark.parametrize("served, context", SERVED, ids=lambda v: str(v))
def test_every_model_matches_for_each_served_tier_with_every_billed_unit(served, context):
    """Sweep: every model of the major providers, served in each tier, with web searches,
    one-hour cache writes and audio and image tokens, against calc_price with the matching
    price_context."""
    rng = random.Random(f"20261130{served}")
    pricer = Pricer()
    checked = variants = 0
    for provider in providers:
        if provider.id not in {"openai", "anthropic", "google", "aws", "azure", "mistral", "deepseek", "x-ai", "groq"}:
            continue
        for model in provider.models:
            inp = rng.choice([999, 150_000, 210_000])
            cr = rng.randint(0, inp)
            cw = rng.randint(0, inp - cr)
            cw_1h = rng.randint(0, cw)
            searches = rng.choice([0, 0, 1, 3])
            out = rng.randint(0, 8000)
            audio_in = rng.choice([0, 0, rng.randint(0, inp - cr - cw)])
            image_in = rng.choice([0, 0, rng.randint(0, inp - cr - cw - audio_in)])
            audio_out = rng.choice([0, 0, rng.randint(0, out)])
            at = datetime(2026, rng.randint(1, 11), rng.randint(1, 28), rng.randint(0, 23), tzinfo=timezone.utc)
            reported = dict(
                input_tokens=inp,
                output_tokens=out,
                cache_read_tokens=cr,
                cache_write_tokens=cw,
                cache_write_1h_tokens=cw_1h,
                web_searches=searches,
                input_audio_tokens=audio_in,
                input_image_tokens=image_in,
                output_audio_tokens=audio_out,
            )
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    ref = calc_price(
                        Usage(**reported),
                        model.id,
                        provider_id=provider.id,
                        genai_request_timestamp=at,
                        price_context=context,
                    )
                    standard = calc_price(
                        Usage(**reported), model.id, provider_id=provider.id, genai_request_timestamp=at
                    )
            except (ValueError, LookupError):
                continue  # usage genai-prices itself cannot price (e.g. modality splits)
            cost = pricer.price(
                usage(
                    provider.id,
                    model.id,
                    inp,
                    out,
                    cr,
                    cw,
                    cache_write_1h_tokens=cw_1h,
                    web_searches=searches,
                    input_audio_tokens=audio_in,
                    input_image_tokens=image_in,
                    output_audio_tokens=audio_out,
                    **served,
                ),
                ns(at),
            )
            assert (cost.total, cost.model) == (ref.total_price, ref.model.id), (provider.id, model.id, served)
            assert cost.input + cost.output + cost.cache_read + cost.cache_write + cost.web_search == cost.total
            differs = ref.total_price != standard.total_price
            variants += differs
            if differs:  # a price of its own: no note
                assert cost.error is None, (provider.id, model.id, cost.error)
            checked += 1
    assert checked > 300
    if context is not None and context != {"service_tier": "fast"}:
        assert variants >= 3, variants  # the sweep saw the tier's own prices


def test_a_tier_without_a_price_is_priced_standard_and_says_so():
    served = usage("openai", "gpt-4o-mini", 1200, 300, 1000, service_tier="scale")
    standard = Pricer().price(usage("openai", "gpt-4o-mini", 1200, 300, 1000), ns(AT))
    cost = Pricer().price(served, ns(AT))
    assert cost.total == standard.total and cost.status is PricingStatus.PRICED
    assert cost.tier == "scale" and "no 'scale' price for gpt-4o-mini" in cost.error


@pytest.mark.parametrize(
    "served, factor",
    [
        ({"service_tier": "flex"}, Decimal("0.5")),
        ({"service_tier": "priority"}, Decimal(2)),
        ({"batch": True}, Decimal("0.5")),
    ],
)
def test_gpt_5_as_served(served, factor):
    """The issue's figures: flex halves a gpt-5 call, priority doubles it, the batch API halves it."""
    standard = Pricer().price(usage("openai", "gpt-5", 1000, 100), ns(AT)).total
    assert Pricer().price(usage("openai", "gpt-5", 1000, 100, **served), ns(AT)).total == standard * factor


def test_web_searches_are_a_cost_part_of_their_own():
    """$10 per thousand searches on claude-sonnet-4-5: three add $0.03."""
    plain = Pricer().price(usage("anthropic", "claude-sonnet-4-5", 1000, 200), ns(AT))
    cost = Pricer().price(usage("anthropic", "claude-sonnet-4-5", 1000, 200, web_searches=3), ns(AT))
    assert cost.web_search == Decimal("0.03") and cost.total == plain.total + Decimal("0.03")
    assert (cost.input, cost.output) == (plain.input, plain.output)


@pytest.mark.parametrize(
    "model, when",
    [
        ("o3", datetime(2025, 6, 1, tzinfo=timezone.utc)),  # before the June 2025 price cut
        ("o3", datetime(2025, 7, 1, tzinfo=timezone.utc)),  # after
    ],
)
def test_price_history_uses_the_span_start_time(model, when):
    cost = Pricer().price(usage("openai", model, 10_000, 1000), ns(when))
    assert cost.total == reference("openai", model, 10_000, 1000, 0, 0, when).total_price


def test_price_history_changes_the_cost():
    pricer = Pricer()
    before = pricer.price(usage("openai", "o3", 10_000, 1000), ns(datetime(2025, 6, 1, tzinfo=timezone.utc)))
    after = pricer.price(usage("openai", "o3", 10_000, 1000), ns(datetime(2025, 7, 1, tzinfo=timezone.utc)))
    assert before.total > after.total


@pytest.mark.parametrize("hour", [2, 18])
def test_time_of_day_prices(hour):
    at = datetime(2026, 3, 3, hour, 15, tzinfo=timezone.utc)
    cost = Pricer().price(usage("deepseek", "deepseek-chat", 10_000, 1000), ns(at))
    assert cost.total == reference("deepseek", "deepseek-chat", 10_000, 1000, 0, 0, at).total_price


def test_response_model_is_priced_before_request_model():
    cost = Pricer().price(usage("openai", "gpt-4o", 1000, 100, response_model="gpt-4o-mini-2024-07-18"), ns(AT))
    assert cost.model == "gpt-4o-mini"
    unknown_snapshot = Pricer().price(usage("openai", "gpt-4o-mini", 1000, 100, response_model="acme-ft-xyz"), ns(AT))
    assert (unknown_snapshot.status, unknown_snapshot.model) == (PricingStatus.PRICED, "gpt-4o-mini")


@pytest.mark.parametrize(
    "provider, model",
    [("openai", "no-such-model-9000"), ("my-vllm", "llama-3-8b-custom"), ("openai", None)],
)
def test_unknown_model_is_unpriced_not_zero(provider, model):
    cost = Pricer().price(usage(provider, model, 1000, 100), ns(AT))
    assert cost.status is PricingStatus.UNPRICED
    assert cost.total is None and cost.error


def test_cache_larger_than_input_is_invalid_usage():
    cost = Pricer().price(usage("openai", "gpt-4o-mini", 100, 10, cache_read=500), ns(AT))
    assert cost.status is PricingStatus.INVALID_USAGE
    assert "exceed input tokens" in cost.error


def test_low_app_decimal_precision_does_not_round_our_money():
    with localcontext() as ctx:
        ctx.prec = 3
        cost = Pricer().price(usage("anthropic", "claude-sonnet-4-5", 123_457, 9_876, 1_234), ns(AT))
    assert cost.total == reference("anthropic", "claude-sonnet-4-5", 123_457, 9_876, 1_234, 0, AT).total_price


OVERRIDES = """
[[model]]
provider = "openai"
model = "ft:gpt-4o-mini:acme:*"
input_per_mtok = "0.30"
output_per_mtok = 1.2
cache_read_per_mtok = "0.15"

[[model]]
model = "llama-3-8b-custom"
input_per_mtok = 0
output_per_mtok = "0.05"
per_thousand_requests = "0.4"

[[model]]
provider = "openai"
model = "gpt-4o-mini"
input_per_mtok = "0.10"
output_per_mtok = "0.40"
"""


@pytest.fixture
def overrides_file(tmp_path):
    path = tmp_path / "prices.toml"
    path.write_text(OVERRIDES)
    return path


def test_overrides_win_and_are_exact(overrides_file):
    pricer = Pricer(overrides_file)
    ft = pricer.price(usage("openai", "ft:gpt-4o-mini:acme:abc123", 2000, 100, cache_read=1000), ns(AT))
    assert ft.status is PricingStatus.OVERRIDDEN
    assert ft.total == (Decimal("0.30") * 1000 + Decimal("0.15") * 1000 + Decimal("1.2") * 100) / 1_000_000
    assert ft.source.startswith("overrides sha256:")
    selfhosted = pricer.price(usage("my-vllm", "llama-3-8b-custom", 1000, 1000), ns(AT))
    assert selfhosted.total == Decimal("0.05") * 1000 / 1_000_000 + Decimal("0.4") / 1000
    negotiated = pricer.price(usage("openai", "gpt-4o-mini", 1000, 1000), ns(AT))
    assert negotiated.total == Decimal("0.0005")
    other = pricer.price(usage("openai", "gpt-4o", 1000, 1000), ns(AT))
    assert other.status is PricingStatus.PRICED


def test_overrides_from_env(overrides_file, monkeypatch):
    monkeypatch.setenv("OTEL_COSTS_PRICES_FILE", str(overrides_file))
    assert Pricer().price(usage("x", "llama-3-8b-custom", 1, 1), ns(AT)).status is PricingStatus.OVERRIDDEN


def test_invalid_overrides_report_every_problem(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("""
extra = 1
[[model]]
model = "a"
input_per_mtok = "-1"
output_per_mtok = "abc"
colour = "red"
[[model]]
input_per_mtok = 1
output_per_mtok = 1
[[model]]
model = "b"
input_per_mtok = true
output_per_mtok = "inf"
""")
    with pytest.raises(PriceOverridesError) as err:
        Pricer(path)
    message = str(err.value)
    for expected in [
        "unknown top-level keys ['extra']",
        "input_per_mtok: '-1'",
        "'abc' is not a decimal",
        "unknown keys ['colour']",
        "#2: 'model' must be a non-empty string",
        "must be a number or a decimal string, got bool",
        "'inf' must be a finite",
    ]:
        assert expected in message


@pytest.mark.parametrize("content, message", [("[[model]\n", "not valid TOML"), (None, "cannot read")])
def test_unreadable_overrides(tmp_path, content, message):
    path = tmp_path / "p.toml"
    if content is not None:
        path.write_text(content)
    with pytest.raises(PriceOverridesError, match=message):
        PriceOverrides.load(path)


@pytest.mark.parametrize(
    "model, extra",
    [
        ("gpt-audio", {"input_audio_tokens": 500, "output_audio_tokens": 100}),
        ("gpt-realtime", {"input_audio_tokens": 800, "input_image_tokens": 200, "output_audio_tokens": 150}),
    ],
)
def test_audio_and_image_tokens_at_their_own_rates(model, extra):
    reported = dict(input_tokens=2000, output_tokens=300, **extra)
    text_only = calc_price(Usage(input_tokens=2000, output_tokens=300), model, provider_id="openai").total_price
    expected = calc_price(Usage(**reported), model, provider_id="openai").total_price
    cost = Pricer().price(usage("openai", model, 2000, 300, **extra))
    assert cost.total == expected != text_only
    assert cost.input + cost.output + cost.cache_read + cost.cache_write + cost.web_search == cost.total


def test_names_senders_choose_never_grow_the_pricer_past_its_bounds(tmp_path):
    """Model names come from spans: a long one is not looked up, and the caches of a
    collector's Pricer stay bounded however many distinct names arrive."""
    from otel_costs.pricing import MAX_CACHED, MAX_MODEL_NAME

    overrides = tmp_path / "prices.toml"
    overrides.write_text('[[model]]\nmodel = "ft:*"\ninput_per_mtok = "1"\noutput_per_mtok = "2"\n')
    pricer = Pricer(str(overrides))
    long_name = "gpt-4o-mini" + "x" * MAX_MODEL_NAME
    cost = pricer.estimate(usage("openai", long_name, 10, 1))
    assert cost.status == PricingStatus.UNPRICED and "longer than" in cost.error
    for i in range(MAX_CACHED + 50):
        assert pricer.estimate(usage("openai", f"no-such-model-{i}", 10, 1)).status == PricingStatus.UNPRICED
    assert len(pricer._models) <= MAX_CACHED and len(pricer._override_hits) <= MAX_CACHED
    assert pricer.estimate(usage("openai", "ft:acme", 1_000_000, 0)).total == Decimal(1)


DATED = """
[[model]]
id = "list-2026"
model = "acme-llm"
input_per_mtok = "1.00"
output_per_mtok = "2.00"
until = 2026-11-15

[[model]]
id = "negotiated"
model = "acme-llm"
input_per_mtok = "0.50"
output_per_mtok = "1.00"
from = 2026-11-15
until = "2026-12-01T12:00:00Z"
"""


@pytest.mark.parametrize(
    "at, price_id, per_mtok",
    [
        (datetime(2026, 11, 14, 23, 59, 59, tzinfo=timezone.utc), "list-2026", ("1.00", "2.00")),
        (datetime(2026, 11, 15, tzinfo=timezone.utc), "negotiated", ("0.50", "1.00")),
        (datetime(2026, 12, 1, 11, 59, tzinfo=timezone.utc), "negotiated", ("0.50", "1.00")),
        (datetime(2026, 12, 1, 12, tzinfo=timezone.utc), None, None),  # no entry in force: unpriced
    ],
)
def test_a_call_is_priced_with_the_override_in_force_at_its_time(at, price_id, per_mtok):
    pricer = Pricer(PriceOverrides.from_dict(tomllib.loads(DATED), version="v1"))
    cost = pricer.price(usage("acme", "acme-llm", 1000, 500), ns(at))
    if price_id is None:
        assert cost.status is PricingStatus.UNPRICED
        return
    assert cost.status is PricingStatus.OVERRIDDEN and cost.source == f"overrides v1 {price_id}"
    assert cost.total == (Decimal(per_mtok[0]) * 1000 + Decimal(per_mtok[1]) * 500) / 1_000_000


@pytest.mark.parametrize(
    "entries, words",
    [
        ('id = "a"\nfrom = 2026-12-01\nuntil = 2026-11-01', "#1 (m, id 'a'): 'until' must be after 'from'"),
        ('id = "a"\nfrom = "yesterday"', "#1 (m, id 'a'): from: 'yesterday' is not a date"),
        (
            'id = "a"\ninput_per_mtok = "-1"',
            "#1 (m, id 'a'): input_per_mtok: '-1' must be a finite, non-negative price",
        ),
    ],
)
def test_bad_dated_entries_are_named(entries, words):
    text = f'[[model]]\nmodel = "m"\noutput_per_mtok = "1"\n{entries}\n'
    if "input_per_mtok" not in entries:
        text += 'input_per_mtok = "1"\n'
    with pytest.raises(PriceOverridesError) as caught:
        PriceOverrides.from_dict(tomllib.loads(text))
    problems = str(caught.value).splitlines()[1:]
    assert len(problems) == 1 and words in problems[0], problems  # one problem, the entry named


def test_overlapping_dates_for_one_model_are_refused_naming_both():
    text = DATED.replace("from = 2026-11-15\n", "from = 2026-11-10\n")
    with pytest.raises(PriceOverridesError, match="'list-2026' and 'negotiated' price \\*/acme-llm over overlapping"):
        PriceOverrides.from_dict(tomllib.loads(text))
