"""The one SQL templating rule: ``{name}`` filled by the loader (the database quoted as an
identifier), ``{name:Type}`` left for ClickHouse as a bound parameter."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import otel_costs_collector
from otel_costs_collector.sql import fill, load

ROOT = Path(otel_costs_collector.__file__).parent


@pytest.mark.parametrize(
    "text, values, expected",
    [
        ("SELECT 1 FROM {db}.t", {"db": "otel_costs"}, "SELECT 1 FROM `otel_costs`.t"),
        (
            "WHERE a = {a:String} AND t >= {start:DateTime64(9, 'UTC')} {filters}",
            {"filters": "AND b = {f_0:String}"},
            "WHERE a = {a:String} AND t >= {start:DateTime64(9, 'UTC')} AND b = {f_0:String}",
        ),
        ("SELECT {dims}x", {"dims": "", "unused": "y"}, "SELECT x"),
    ],
    ids=["database-quoted", "parameters-left-for-clickhouse", "empty-fragment"],
)
def test_fill(text, values, expected):
    assert fill(text, **values) == expected


@pytest.mark.parametrize(
    "text, values, error",
    [
        ("SELECT {dims} FROM {db}.t", {"db": "d"}, KeyError),
        ("SELECT 1 FROM {db}.t", {"db": "d`; DROP TABLE x; --"}, ValueError),
        ("SELECT 1 FROM {db}.t", {"db": "a.b"}, ValueError),
    ],
    ids=["placeholder-without-value", "not-a-name", "dotted-name"],
)
def test_fill_refuses(text, values, error):
    with pytest.raises(error):
        fill(text, **values)


def test_load_drops_comments_and_fills():
    text = load("otel_costs_collector.receive", "recent_tokens", db="otel_costs")
    assert "--" not in text and "FROM `otel_costs`.genai_spans" in text and "{window:UInt32}" in text


def test_every_sql_file_named_in_the_collector_exists():
    """In SQL comments, and in docstrings as ``name.sql`` (migrations are frozen: their checksums)."""
    named = set()
    for path in ROOT.rglob("*"):
        text = path.read_text(encoding="utf-8") if path.suffix in (".py", ".sql") else ""
        if path.suffix == ".sql" and "migrations" not in path.parts:
            named |= set(re.findall(r"\b([a-z0-9_]+)\.sql\b", text))
        named |= set(re.findall(r"``([a-z0-9_]+)\.sql``", text))
    files = {p.stem for p in ROOT.rglob("*.sql")}
    assert named and named <= files, sorted(named - files)
