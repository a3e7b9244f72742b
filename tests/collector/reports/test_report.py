"""otel_costs_collector/reports/render.py: what the CLI and the dashboard's CSV downloads print."""

from __future__ import annotations

import csv
import io
import urllib.request

import grpc
import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc

from ..spans import SEMCONV, sdk_request

# Values an attacker can put in span attributes that a spreadsheet would run (attribution
# values are printable and stripped, so tab and CR cannot start one: see the render test)
FORMULAS = ['=HYPERLINK("http://evil","x")', "+cmd|' /C calc'!A0", "-2+3", "@SUM(A1)"]


@pytest.mark.parametrize("value", [*FORMULAS, "\tTAB"])
def test_render_neutralises_formula_cells(value):
    """(A CR cannot start a stored value either: the mapping keeps printable attribution only.)"""
    from otel_costs_collector.reports.render import render

    text = render(
        [
            {
                "tenant": value,
                "cost_usd": "1.5",
                "calls": 1,
                "input_tokens": 1,
                "output_tokens": 1,
                "cache_read_tokens": 0,
                "cache_write_tokens": 0,
                "unpriced_calls": 0,
            }
        ],
        ("tenant",),
        "csv",
    )
    (row,) = csv.DictReader(io.StringIO(text, newline=""))
    assert row["tenant"] == "'" + value and row["cost_usd"] == "1.5"


@pytest.mark.parametrize("where", ["cli", "dashboard"])
def test_csv_cells_from_span_attributes_are_never_formulas(collector, where):
    """OWASP's CSV-injection rule: a cell starting with =, +, -, @, tab or CR is prefixed with
    an apostrophe; the value is otherwise kept."""
    spans = [{**SEMCONV, "tenant.id": value, "feature.name": "ok"} for value in FORMULAS]
    with grpc.insecure_channel(collector.grpc_target) as channel:
        trace_service_pb2_grpc.TraceServiceStub(channel).Export(sdk_request(spans), timeout=30)
    if where == "cli":
        import subprocess
        import sys

        text = subprocess.run(
            [
                sys.executable,
                "-m",
                "otel_costs_collector.cli",
                "report",
                "--url",
                collector.http_url,
                "--by",
                "tenant,feature",
                "--format",
                "csv",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        ).stdout
    else:
        text = (
            urllib.request.urlopen(collector.http_url + "/dashboard/tenants.csv?since=1d", timeout=30).read().decode()
        )
    rows = list(csv.DictReader(io.StringIO(text)))
    tenants = sorted(r["tenant"] for r in rows)
    assert tenants == sorted("'" + value for value in FORMULAS)
    assert all(not cell.startswith(("=", "+", "-", "@", "\t", "\r")) for r in rows for cell in r.values())
