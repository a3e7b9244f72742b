"""What a re-price is asked (reprice/plan.py): whole UTC days, every problem named at once."""

from __future__ import annotations

from datetime import date, datetime, timezone

import pytest

from otel_costs_collector.reprice.plan import RepriceError, RepriceRequest

NOW = datetime(2026, 12, 6, 15, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    "params, days",
    [
        ({"since": "7d"}, (date(2026, 11, 30), date(2026, 12, 6))),
        ({"from": "2026-11-01", "to": "2026-12-01"}, (date(2026, 11, 1), date(2026, 11, 30))),
        ({"from": "2026-12-01", "to": "2027-01-01"}, (date(2026, 12, 1), date(2026, 12, 6))),  # not past today
    ],
)
def test_ranges_are_whole_utc_days(params, days):
    asked = RepriceRequest.parse(params, NOW)
    assert (asked.day_from, asked.day_to) == days
    assert asked.dry_run is True and asked.only == "all"


@pytest.mark.parametrize(
    "params, words",
    [
        ({}, ["say which days"]),
        ({"since": "7d", "onyl": "unpriced"}, ["unknown field 'onyl'"]),
        (
            {"since": "7d", "only": "some", "dry_run": 3},
            ["only must be one of all, unpriced", "dry_run must be true or false"],
        ),
        ({"since": "7d", "from": "2026-11-01"}, ["either since or from/to"]),
        ({"from": "2026-12-10", "to": "2026-12-20"}, ["the range starts after today"]),
        ({"from": "2026-12-10"}, ["from: must be before to"]),
        ({"since": "1d", "by": "<script>"}, ["by must be a name"]),
        ({"since": "1d", "model": "m" * 300}, ["model must be a model name"]),
    ],
)
def test_problems_are_named_together(params, words):
    with pytest.raises(RepriceError) as caught:
        RepriceRequest.parse(params, NOW)
    assert all(w in str(caught.value) for w in words), str(caught.value)
