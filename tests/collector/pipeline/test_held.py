"""The journal of calls waiting for their attribution: rows with their column names, so a
journal written before a change of the columns (migration 0014) is read after it."""

from __future__ import annotations

import json
from decimal import Decimal

from otel_costs.pricing import Pricer
from otel_costs_collector.mapping.rows import map_request
from otel_costs_collector.pipeline.held import _COLUMNS_BEFORE_0014, _rows_doc, _rows_of
from otel_costs_collector.storage.columns import COLUMNS

from ..spans import SEMCONV, sdk_request


def test_a_row_survives_the_journal_exactly():
    (row,) = map_request(sdk_request([dict(SEMCONV, **{"otel_costs.usage.web_searches": 2})]), Pricer()).rows
    assert _rows_of(json.loads(json.dumps(_rows_doc([row]))))[0] == row and any(
        isinstance(v, Decimal) and v for v in row
    )


def test_a_row_journaled_before_0014_is_read_with_the_new_columns_empty():
    (row,) = map_request(sdk_request([dict(SEMCONV)]), Pricer()).rows
    named = dict(zip(COLUMNS, row))
    old = [str(named[c]) if isinstance(named[c], Decimal) else named[c] for c in _COLUMNS_BEFORE_0014]
    back = dict(zip(COLUMNS, _rows_of({"rows": [old]})[0]))  # a document of that version
    assert len(_COLUMNS_BEFORE_0014) == 36
    assert (back["cache_write_1h_tokens"], back["web_searches"], back["cost_web_search"], back["service_tier"]) == (
        0,
        0,
        Decimal(0),
        "",
    )
    assert {c: back[c] for c in _COLUMNS_BEFORE_0014} == {c: named[c] for c in _COLUMNS_BEFORE_0014}
