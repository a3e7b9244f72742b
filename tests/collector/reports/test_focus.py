"""The FOCUS export from a real collector: every money column sums exactly to ``/v1/costs`` for
the same range and grouping, CSV and Parquet hold the same rows, uncounted rows never appear,
and the file passes the FinOps Foundation's validator (focus-validator 1.0.0, FOCUS 1.0), run
in its own environment (it pins numpy < 2 and pandas < 3, which this project's cannot share)."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import venv
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import httpx
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from otel_costs_collector.cli.main import main as cli
from otel_costs_collector.reports.focus import COLUMNS, FOCUS_COLUMNS

from ..reconcile.test_reconcile import wait_for_rollups
from ..spans import SEMCONV, sdk_request

UTC = timezone.utc
TODAY = datetime.now(UTC).date()
DAYS = [TODAY - timedelta(days=n) for n in (3, 2)]
PROTO = {"Content-Type": "application/x-protobuf"}
MONEY = ("BilledCost", "EffectiveCost", "ContractedCost")
# focus-validator 1.0.0's pandera 0.17 imports multimethod.overload, which multimethod 1.11 removed.
VALIDATOR = ("focus-validator==1.0.0", "multimethod<1.11")


@pytest.fixture(scope="session")
def focus_validator() -> Path:
    """The validator's command, installed once into a cached virtual environment."""
    home = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "otel-costs-tests" / "focus-validator-1.0.0"
    command = home / "bin" / "focus-validator"
    if not command.exists():
        venv.create(home, with_pip=True, clear=True)
        done = subprocess.run(
            [str(home / "bin" / "python"), "-m", "pip", "install", "-q", *VALIDATOR], capture_output=True, text=True
        )
        assert done.returncode == 0, f"installing {' '.join(VALIDATOR)} failed:\n{done.stderr[-2000:]}"
    return command


def post(c, spans: list[dict], day, service: str = "chat-api") -> None:
    at = datetime(day.year, day.month, day.day, 9, tzinfo=UTC)
    request = sdk_request([{**s, "_start": at} for s in spans], service=service)
    r = httpx.post(c.http_url + "/v1/traces", content=request.SerializeToString(), headers=PROTO, timeout=30)
    assert r.status_code == 200, r.text


def traffic(c) -> int:
    mini = {**SEMCONV, "tenant.id": "acme", "user.id": "u1", "feature.name": "chat"}
    big = {**SEMCONV, "gen_ai.request.model": "gpt-4o", "tenant.id": "globex", "feature.name": "search"}
    claude = {
        **SEMCONV,
        "gen_ai.provider.name": "anthropic",
        "gen_ai.request.model": "claude-sonnet-4-5",
        "gen_ai.usage.cache_creation.input_tokens": 200,
    }
    unknown = {**SEMCONV, "gen_ai.request.model": "acme-llm-unreleased"}  # unpriced: $0, still counted
    for day in DAYS:
        post(c, [mini, mini, big, claude, unknown], day)
        post(c, [big], day, service="worker")
    return 12


def test_focus_sums_to_the_report_and_passes_the_validator(collector, focus_validator, tmp_path):
    c = collector
    wait_for_rollups(c, traffic(c))
    window = {"from": DAYS[0].isoformat(), "to": (TODAY + timedelta(days=1)).isoformat()}

    r = httpx.get(c.http_url + "/v1/export/focus", params=window, timeout=60)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv"), r.text
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert list(rows[0]) == list(COLUMNS)

    report = httpx.get(c.http_url + "/v1/costs", params={"by": "day,provider,model", **window}).json()
    want = {(x["day"], x["provider"], x["model"]): (Decimal(x["cost_usd"]), x["calls"]) for x in report}
    for column in (*MONEY, "ListCost"):
        got: dict[tuple[str, str, str], Decimal] = {}
        for row in rows:
            key = (row["ChargePeriodStart"][:10], row["Provider"], row["SkuId"])
            got[key] = got.get(key, Decimal(0)) + Decimal(row[column])
        assert got == {k: v for k, (v, _) in want.items()}, column  # no adjustments here: list = billed
    calls: dict[tuple[str, str, str], int] = {}
    for row in rows:
        key = (row["ChargePeriodStart"][:10], row["Provider"], row["SkuId"])
        calls[key] = calls.get(key, 0) + int(row["x_Calls"])
    assert calls == {k: n for k, (_, n) in want.items()}
    tags = {json.dumps(json.loads(row["Tags"]), sort_keys=True) for row in rows}
    assert '{"feature": "chat", "tenant": "acme", "user": "u1"}' in tags
    assert {row["x_TokenType"] for row in rows} >= {"input", "output", "cache_read", "cache_write"}

    # Parquet holds the same rows
    parquet = tmp_path / "focus.parquet"
    out = CliRunner().invoke(cli, ["export", "focus", "--url", c.http_url, "--format", "parquet", "--out", str(parquet),
                                   "--from", window["from"], "--to", window["to"]])  # fmt: skip
    assert out.exit_code == 0, out.output
    table = pq.read_table(parquet).to_pylist()
    assert len(table) == len(rows)
    for as_csv, as_parquet in zip(rows, table):
        for column in COLUMNS:
            value = as_parquet[column]
            shown = (
                "" if value is None else format(value.normalize(), "f") if isinstance(value, Decimal) else str(value)
            )
            expected = as_csv[column]
            if isinstance(value, (Decimal, int)) and not isinstance(value, bool):
                assert Decimal(value) == Decimal(expected), column
            else:
                assert shown == expected, column

    # The FinOps Foundation's validator accepts the file (FOCUS columns only: x_ are ours)
    path = tmp_path / "focus.csv"
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(FOCUS_COLUMNS), extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    # Two of the validator's 1.0 rules are its own bugs: one requires a column "ResourceID" (FOCUS
    # 1.0 names it ResourceId), one queries "ChargeType" (FOCUS 0.5's name of ChargeCategory).
    skip = tmp_path / "skip.yaml"
    skip.write_text("overrides:\n  - ResourceID_Required\n  - SkuPriceId_Nullable\n")
    python = focus_validator.parent / "python"
    packages = subprocess.run(
        [
            str(python),
            "-c",
            "import focus_validator, os; print(os.path.dirname(os.path.dirname(focus_validator.__file__)))",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    checked = subprocess.run(
        [str(focus_validator), "--data-file", str(path), "--validate-version", "1.0", "--override-file", str(skip)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=packages,  # it reads its currency codes from a path relative to the working directory
    )
    assert "Validation succeeded." in checked.stdout, checked.stdout[-4000:] + checked.stderr[-2000:]


def test_bad_export_parameters_are_named(collector):
    r = httpx.get(collector.http_url + "/v1/export/focus", params={"format": "xlsx"})
    assert r.status_code == 400 and "format" in r.json()["error"]
    r = httpx.get(collector.http_url + "/v1/export/focus", params={"since": "forever"})
    assert r.status_code == 400 and "since" in r.json()["error"]
    out = CliRunner().invoke(cli, ["export", "focus", "--url", collector.http_url, "--format", "parquet"])
    assert out.exit_code == 1 and "--out" in out.output
