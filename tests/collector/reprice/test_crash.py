"""A collector killed (SIGKILL, a failpoint) in the middle of a re-price: its next start leaves
each day either all old or all new — never a mix, never a rollup counted twice — and a run
started again finishes the rest."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import date, timedelta
from decimal import Decimal

import httpx
import pytest

from otel_costs_collector.reprice.run import FAILPOINT_ENV
from tests.e2e.test_cli import quiet_env, serve, stop

from ..budgets.test_budgets import send
from .test_reprice import CALL, SUMS_SQL, at, cost, days_back, override

_SUMS = """
import clickhouse_connect, json, sys
c = clickhouse_connect.get_client(interface='chdb', path=sys.argv[1])
by_day = lambda sql: {str(d): [str(t), int(n)] for d, t, n in c.query(sql).result_rows}
print(json.dumps({name: by_day(sql) for name, sql in json.loads(sys.argv[2]).items()}))
"""


def stored_sums(data: str) -> dict[str, dict[date, tuple[Decimal, int]]]:
    """Per day, cost and unpriced calls of the raw rows and both rollups, read by a fresh process
    (chDB holds one data path per process)."""
    queries = json.dumps({name: sql.format(db="otel_costs") for name, sql in SUMS_SQL.items()})
    out = subprocess.run([sys.executable, "-c", _SUMS, data, queries], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return {
        name: {date.fromisoformat(d): (Decimal(t), n) for d, (t, n) in by_day.items()}
        for name, by_day in json.loads(out.stdout).items()
    }


class Url:
    def __init__(self, port: int):
        self.http_url = f"http://127.0.0.1:{port}"


def wait_calls(url: str, calls: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        rows = httpx.get(url + "/v1/costs", params={"since": "7d"}, timeout=30).json()
        if sum(r["calls"] for r in rows) == calls:
            return
        time.sleep(0.2)
    raise AssertionError("the calls were never stored")


@pytest.mark.parametrize(
    "step, d1_new",
    [
        ("staging", False),  # killed while d1's new versions were being staged: rolled back
        ("staged", False),  # after d1's new versions were staged: rolled back
        ("rollups", True),  # after the rollups took d1's difference, before its raw rows: finished
        ("rows", True),  # after the raw rows, before the journal said so: finished, rollups once
    ],
)
def test_a_run_killed_midway_leaves_each_day_old_or_new_and_finishes_when_run_again(tmp_path, step, d1_new):
    d1, d2 = days_back(2), days_back(1)
    data = str(tmp_path / "data")
    prices = tmp_path / "prices.toml"
    prices.write_text(
        override(
            [
                {
                    "provider": "openai",
                    "model": CALL["gen_ai.request.model"],
                    "input_per_mtok": "0.5",
                    "output_per_mtok": "1.5",
                }
            ]
        )
    )
    one = cost("0.5", "1.5")
    proc, _, port, _ = serve(data, "--prices-file", str(prices), env=quiet_env(**{FAILPOINT_ENV: step}))
    url = f"http://127.0.0.1:{port}"
    try:
        send(Url(port), 3, at(d1, 10), **{**CALL, "tenant.id": "acme"})  # priced by the SDK: unpriced
        send(Url(port), 2, at(d2, 10), **{**CALL, "tenant.id": "acme"})
        wait_calls(url, 5)
        body = {"from": d1.isoformat(), "to": (d2 + timedelta(days=1)).isoformat(), "dry_run": False}
        with pytest.raises(httpx.TransportError):
            httpx.post(url + "/v1/reprice", json=body, timeout=120)
        assert proc.wait(30) == -9  # SIGKILL: nothing flushed, nothing cleaned up
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.drain.join(30)  # type: ignore[attr-defined]
        proc.stderr.close()

    # The next start finishes or rolls back: d1 all new or all old, d2 untouched; rollups = raw.
    proc, _, port, _ = serve(data, "--prices-file", str(prices), env=quiet_env())
    url = f"http://127.0.0.1:{port}"
    try:
        runs = httpx.get(url + "/v1/reprice", timeout=30).json()["runs"]
        assert [r["state"] for r in runs] == ["interrupted"]
        assert ("1 day(s) applied, 0 rolled back" if d1_new else "0 day(s) applied, 1 rolled back") in runs[0]["note"]
    finally:
        stop(proc)
    sums = stored_sums(data)
    assert sums["raw"] == sums["hourly"] == sums["daily"]
    assert sums["raw"] == {d1: (one * 3, 0) if d1_new else (Decimal(0), 3), d2: (Decimal(0), 2)}

    # Run again: the rest is re-priced, nothing twice.
    proc, _, port, _ = serve(data, "--prices-file", str(prices), env=quiet_env())
    try:
        r = httpx.post(f"http://127.0.0.1:{port}/v1/reprice", json=body, timeout=120)
        assert r.status_code == 200, r.text
        assert r.json()["rows"] == (2 if d1_new else 5)
    finally:
        stop(proc)
    sums = stored_sums(data)
    assert sums["raw"] == sums["hourly"] == sums["daily"] == {d1: (one * 3, 0), d2: (one * 2, 0)}
