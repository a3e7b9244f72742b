"""Revenue lines: money in minor and major units, spreading over UTC days, and imports from CSV
and JSON lines (bad lines reported, good ones kept)."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from otel_costs_collector.revenue.lines import LineError, RevenueLine, parse_import, spread
from otel_costs_collector.revenue.money import MoneyError, amount_of, currency_of, from_minor

UTC = timezone.utc


@pytest.mark.parametrize(
    "minor, currency, major",
    [
        (1000, "usd", Decimal("10")),  # two decimals: cents
        (1999, "EUR", Decimal("19.99")),
        (500, "jpy", Decimal("500")),  # zero-decimal (Stripe's list)
        (3000, "KRW", Decimal("3000")),
        (5124, "kwd", Decimal("5.124")),  # three-decimal
        (500, "isk", Decimal("5")),  # Stripe keeps two decimals for ISK
        (-250, "usd", Decimal("-2.5")),  # a credit
    ],
)
def test_stripe_minor_units_are_exact(minor, currency, major):
    assert from_minor(minor, currency) == major


@pytest.mark.parametrize(
    "minor, currency",
    [(1.5, "usd"), ("100", "usd"), (True, "usd"), (10**20, "usd"), (100, "xyz"), (100, None)],
)
def test_what_is_not_a_stripe_amount_is_refused(minor, currency):
    with pytest.raises(MoneyError):
        from_minor(minor, currency)


@pytest.mark.parametrize("text", ["NaN", "1e400", "abc", "1" * 17, "0.0000000000000000001", None, 1.5])
def test_absurd_amounts_are_refused(text):
    with pytest.raises(MoneyError):
        amount_of(text)


def test_currency_codes_are_iso_4217():
    assert currency_of(" eur ") == "EUR"
    with pytest.raises(MoneyError, match="unknown currency"):
        currency_of("EURO")


@pytest.mark.parametrize(
    "amount, start, end",
    [
        (Decimal("20"), datetime(2026, 10, 15, tzinfo=UTC), datetime(2026, 11, 15, tzinfo=UTC)),  # a month
        (Decimal("19.99"), datetime(2026, 11, 1, 12, tzinfo=UTC), datetime(2026, 11, 4, 6, tzinfo=UTC)),  # partial
        (Decimal("100"), datetime(2026, 1, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC)),  # a year
        (Decimal("-7.5"), datetime(2026, 2, 27, tzinfo=UTC), datetime(2026, 3, 2, tzinfo=UTC)),  # a credit
    ],
)
def test_a_line_is_spread_by_the_seconds_of_each_day_and_adds_up_exactly(amount, start, end):
    days = spread(amount, start, end)
    assert RevenueLine("import", "x", "t", amount, "USD", start, end).day_count() == len(days)
    total = (end - start).total_seconds()
    assert [d for d, _ in days] == [start.date() + timedelta(days=i) for i in range(len(days))]
    assert days[-1][0] == (end - timedelta(microseconds=1)).date()
    assert sum(share for _, share in days) == amount  # exactly
    for day, share in days[:-1]:
        day_start = datetime(day.year, day.month, day.day, tzinfo=UTC)
        seconds = (min(end, day_start + timedelta(days=1)) - max(start, day_start)).total_seconds()
        assert share == (amount * Decimal(int(seconds)) / Decimal(int(total))).quantize(Decimal("1e-18"))


def test_a_month_of_whole_days_gives_each_day_the_same_share():
    days = spread(Decimal("31"), datetime(2026, 12, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC))
    assert len(days) == 31 and {share for _, share in days} == {Decimal(1)}


def test_a_one_off_charge_is_revenue_of_its_day():
    at = datetime(2026, 11, 3, 15, tzinfo=UTC)
    assert spread(Decimal("9"), at, at) == [(date(2026, 11, 3), Decimal("9"))]


CSV = """id,tenant,amount,currency,period_start,period_end,plan
inv-1,acme,20.00,USD,2026-11-01,2026-12-01,pro
inv-2,globex,abc,USD,2026-11-01,2026-12-01,team
inv-3,initech,5,EUR,2026-11-10,,pro
inv-8,initech,-5,EUR,2026-11-10,,pro
inv-4,acme,10,XYZ,2026-11-01,2026-12-01,pro
inv-5,acme,10,USD,,2026-12-01,pro
inv-6,acme,10,USD,2026-12-01,2026-11-01,pro
inv-1,acme,30.00,USD,2026-11-01,2026-12-01,pro
inv-7,acme,1e16,USD,2026-11-01,2026-12-01,pro
"""


def test_a_csv_import_keeps_good_lines_and_says_why_each_bad_one_is_left_out():
    lines, problems = parse_import(CSV)
    assert [(x.line_id, x.tenant, x.amount, x.currency, x.plan) for x in lines] == [
        ("inv-1", "acme", Decimal("20.00"), "USD", "pro"),
        ("inv-3", "initech", Decimal("5"), "EUR", "pro"),
    ]
    assert lines[0].period_end == datetime(2026, 12, 1, tzinfo=UTC)
    assert lines[1].period_end == datetime(2026, 11, 11, tzinfo=UTC)  # no end: the start's day
    assert len(problems) == 7
    expected = ("not a number", "must not be negative", "unknown currency", "period_start is required", "after",
                "twice", "15 digits")  # fmt: skip
    for number, words in zip((3, 5, 6, 7, 8, 9, 10), expected):
        assert any(p.startswith(f"line {number}:") and words in p for p in problems), (number, problems)


def test_json_lines_import_with_bad_json_and_nested_values():
    text = "\n".join(
        [
            '{"id": "a", "tenant": "acme", "amount": "12.5", "currency": "usd", "period_start": "2026-11-01"}',
            "{not json",
            '{"id": "b", "tenant": {"nested": 1}, "amount": 1, "currency": "USD", "period_start": "2026-11-01"}',
            '{"id": "c", "tenant": "acme", "amount": 0.1, "currency": "JPY", "period_start": "2026-11-01T12:00:00Z",'
            ' "period_end": "2026-11-02T12:00:00Z", "surprise": 1}',
            "",
            '["a list"]',
        ]
    )
    lines, problems = parse_import(text)
    assert [(x.line_id, x.amount, x.currency) for x in lines] == [("a", Decimal("12.5"), "USD")]
    assert [p.split(":")[0] for p in problems] == ["line 2", "line 3", "line 4", "line 6"]
    assert "tenant must be text" in problems[1] and "unknown field(s) surprise" in problems[2]


def test_a_csv_without_the_columns_is_refused_whole():
    with pytest.raises(LineError, match="lacks tenant, amount"):
        parse_import("id,foo\n1,2\n", "csv")
