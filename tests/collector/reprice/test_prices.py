"""Which stored calls a re-price changes, and to what (reprice/prices.py): a unit test of one
module, with the real Pricer and genai-prices."""

from __future__ import annotations

import tomllib
from datetime import datetime, timezone
from decimal import Decimal

import pytest
from genai_prices import Usage, calc_price

from otel_costs.overrides import PriceOverrides
from otel_costs.pricing import Pricer
from otel_costs_collector.reprice.prices import Kept, Stored, Version, reprice

AT = int(datetime(2026, 11, 2, 12, tzinfo=timezone.utc).timestamp() * 1e9)
ZERO = (Decimal(0),) * 7
MINI = calc_price(
    Usage(input_tokens=1200, cache_read_tokens=1000, output_tokens=300),
    model_ref="gpt-4o-mini",
    provider_id="openai",
    genai_request_timestamp=datetime(2026, 11, 2, 12, tzinfo=timezone.utc),
)
PRICER = Pricer(
    PriceOverrides.from_dict(
        tomllib.loads('[[model]]\nmodel = "acme-llm"\nid = "acme"\ninput_per_mtok = 1\noutput_per_mtok = 2\n'),
        version="v",
    )
)


def stored(model: str, costs: tuple, status: str, source: str) -> Stored:
    version = Version(costs, status, source, model, "", "sdk", "standard")
    return Stored(AT, "openai", model, "", "chat", 1200, 300, 1000, 0, 0, 0, 0, version)


def mini_costs(total: Decimal) -> tuple:
    return (Decimal(0),) * 6 + (total,)


@pytest.mark.parametrize(
    "row, expected",
    [
        (stored("nobody-knows", ZERO, "unpriced", ""), Kept("still unpriced")),
        # A known cost never becomes unknown.
        (stored("was-known", mini_costs(Decimal("0.1")), "priced", "genai-prices 0.0.1"), Kept("no price now")),
        # Priced with today's very table, yet another cost: facts the row does not hold (audio tokens…).
        (stored("gpt-4o-mini", mini_costs(Decimal("0.5")), "priced", PRICER.source), Kept("facts not stored")),
    ],
)
def test_calls_that_keep_their_version(row, expected):
    assert reprice(PRICER, row) == expected


@pytest.mark.parametrize(
    "row, total, status, source",
    [
        (
            stored("acme-llm", ZERO, "unpriced", ""),
            (Decimal(1200) * 1 + Decimal(300) * 2) / 1_000_000,
            "overridden",
            "overrides v acme",
        ),
        (
            stored("gpt-4o-mini", mini_costs(Decimal("0.5")), "priced", "genai-prices 0.0.1"),
            MINI.total_price,
            "priced",
            PRICER.source,
        ),
    ],
)
def test_calls_that_get_a_new_version(row, total, status, source):
    new = reprice(PRICER, row)
    assert isinstance(new, Version)
    assert (new.costs[-1], new.status, new.source, new.priced_by) == (total, status, source, "collector")
    assert sum(new.costs[:-1]) == new.costs[-1]


def test_a_new_version_priced_again_is_unchanged():
    row = stored("gpt-4o-mini", mini_costs(Decimal("0.5")), "priced", "genai-prices 0.0.1")
    new = reprice(PRICER, row)
    assert isinstance(new, Version)
    assert reprice(PRICER, row._replace(version=new)) == Kept("unchanged")
