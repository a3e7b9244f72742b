"""SIGKILL at random moments and storage outages while clients send: every span a client
saw acknowledged is stored exactly once, raw rows and rollups, to the last digit."""

from __future__ import annotations

import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

HARNESS = Path(__file__).resolve().parents[2] / "bench" / "fault_harness.py"


@pytest.mark.parametrize("seed", [7, 11])
def test_kills_and_outages_lose_nothing_and_count_nothing_twice(seed):
    out = subprocess.run(
        [
            sys.executable,
            str(HARNESS),
            "--seconds",
            "12",
            "--kills",
            "2",
            "--outages",
            "2",
            "--spans",
            "40",
            "--seed",
            str(seed),
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["events"].count("SIGKILL") == 2 and result["attempts"] > 0
    assert result["acknowledged"] == result["sent"] > 0
    assert (result["lost"], result["duplicated"]) == (0, 0)
    assert result["unacknowledged_stored"] == 0
    counts = ("stored", "stored_rows", "rollup_calls", "rollup_calls_daily")
    assert tuple(result[k] for k in counts) == (result["acknowledged"],) * 4, result
    costs = {Decimal(result[k]) for k in ("cost_acknowledged", "cost_raw", "cost_hourly", "cost_daily")}
    assert len(costs) == 1, result
