"""The real ``otel-costs`` command: migrate, serve, stop gracefully on SIGTERM or SIGINT."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from decimal import Decimal

import httpx
import pytest

from tests.collector.spans import SEMCONV, sdk_request

CLI = [sys.executable, "-m", "collector.cli"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def count_rows(path: str) -> int:
    # chDB allows one data path per process: read it from a fresh one.
    code = ("import clickhouse_connect, sys; c = clickhouse_connect.get_client(interface='chdb', path=sys.argv[1]); "
            "print(c.query('SELECT count() FROM otel_costs.genai_spans').result_rows[0][0])")
    out = subprocess.run([sys.executable, "-c", code, path], capture_output=True, text=True, check=True, timeout=60)
    return int(out.stdout.strip())


def test_migrate_command_reports_and_is_idempotent(tmp_path):
    first = subprocess.run(CLI + ["migrate", "--storage", str(tmp_path / "d")], capture_output=True, text=True, timeout=120)
    second = subprocess.run(CLI + ["migrate", "--storage", str(tmp_path / "d")], capture_output=True, text=True, timeout=120)
    assert first.returncode == 0 and "applied: 0001_genai_spans" in first.stdout
    assert second.returncode == 0 and second.stdout.strip() == "schema is up to date"


def test_bad_config_is_one_clear_error(tmp_path):
    out = subprocess.run(CLI + ["collector", "--storage", "ftp://x", "--grpc-port", "99999"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert "grpc_port" in out.stderr and "storage" in out.stderr and "Traceback" not in out.stderr


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_serve_then_a_stop_signal_flushes_and_exits(tmp_path, sig):
    data = str(tmp_path / "data")
    grpc_port, http_port = free_port(), free_port()
    proc = subprocess.Popen(CLI + ["collector", "--storage", data, "--grpc-port", str(grpc_port),
                                   "--http-port", str(http_port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "OTEL_COSTS_BATCH_MAX_AGE_MS": "60000"})
    try:
        url = f"http://127.0.0.1:{http_port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, "collector did not start"
            time.sleep(0.2)
        body = sdk_request([dict(SEMCONV) for _ in range(5)]).SerializeToString()
        with httpx.Client() as client:
            # The batch waits up to 60 s: the signal must flush it rather than drop it.
            import threading

            answer = {}
            sender = threading.Thread(target=lambda: answer.setdefault("r", client.post(
                url + "/v1/traces", content=body, headers={"Content-Type": "application/x-protobuf"}, timeout=30)))
            sender.start()
            time.sleep(1.0)
            proc.send_signal(sig)
            sender.join(30)
        assert answer["r"].status_code == 200
        _, stderr = proc.communicate(timeout=30)
        assert proc.returncode == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    logs = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    assert [e["msg"] for e in logs][-2:] == ["stopping: flushing queued spans", "collector stopped"]
    assert count_rows(data) == 5


def start_collector(data: str) -> tuple[subprocess.Popen, int]:
    grpc_port, http_port = free_port(), free_port()
    proc = subprocess.Popen(CLI + ["collector", "--storage", data, "--grpc-port", str(grpc_port),
                                   "--http-port", str(http_port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{http_port}/healthz", timeout=1).status_code == 200:
                return proc, http_port
        except httpx.TransportError:
            pass
        assert proc.poll() is None and time.monotonic() < deadline, "collector did not start"
        time.sleep(0.2)


def report(data: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(CLI + ["report", "--storage", data, *args], capture_output=True, text=True, timeout=120)


def test_demo_then_report_directly_and_through_the_running_collector(tmp_path):
    data = str(tmp_path / "data")
    demo = subprocess.run(CLI + ["demo", "--storage", data, "--calls", "300", "--days", "5",
                                 "--grpc-port", str(free_port()), "--http-port", str(free_port())],
                          capture_output=True, text=True, timeout=300)
    assert demo.returncode == 0, demo.stderr[-2000:]
    assert "otel-costs report --by feature" in demo.stdout and "TOTAL" in demo.stdout
    assert "self-hosted" in demo.stdout  # the unpriced model is shown, not hidden

    direct = report(data, "--by", "tenant,feature", "--since", "6d", "--format", "json")
    assert direct.returncode == 0, direct.stderr
    rows = json.loads(direct.stdout)
    assert sum(r["calls"] for r in rows) == 300
    assert sum(r["unpriced_calls"] for r in rows) > 0

    proc, _ = start_collector(data)
    try:
        via_api = report(data, "--by", "tenant,feature", "--since", "6d", "--format", "json")
        csv_out = report(data, "--by", "tenant", "--since", "6d", "--format", "csv")
        table = report(data, "--by", "feature", "--since", "6d")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    assert via_api.returncode == 0 and json.loads(via_api.stdout) == rows
    assert csv_out.stdout.splitlines()[0] == ("tenant,cost_usd,calls,input_tokens,output_tokens,"
                                              "cache_read_tokens,cache_write_tokens,unpriced_calls")
    total = sum(Decimal(r["cost_usd"]) for r in rows)
    assert table.stdout.splitlines()[-1].split()[:2] == ["TOTAL", format(total.normalize(), "f")]


@pytest.mark.parametrize(
    "args, message",
    [(["--by", "tenant;drop"], "unknown dimension"), (["--since", "yesterday"], "not like 24h"),
     (["--from", "2026-99-01"], "not an ISO date"), (["--tz", "Nowhere"], "unknown time zone")],
)
def test_report_bad_parameters_exit_2_without_traceback(tmp_path, args, message):
    out = report(str(tmp_path / "data"), *args)
    assert out.returncode == 2 and message in out.stderr and "Traceback" not in out.stderr


def budget(data: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(CLI + ["budget", *args, "--storage", data], capture_output=True, text=True, timeout=120)


def test_budget_commands_directly_and_through_the_running_collector(tmp_path):
    data = str(tmp_path / "data")
    made = budget(data, "set", "acme", "--tenant", "acme", "--amount", "40", "--period", "monthly")
    assert made.returncode == 0, made.stderr
    assert json.loads(made.stdout)["amount_usd"] == "40" and json.loads(made.stdout)["hard"] is True
    bad = budget(data, "set", "x y", "--amount", "0", "--period", "daily")
    assert bad.returncode == 2 and "amount_usd" in bad.stderr and "scope" in bad.stderr and "Traceback" not in bad.stderr
    proc, http_port = start_collector(data)
    try:
        soft = budget(data, "set", "chat", "--feature", "chat", "--amount", "8", "--period", "daily", "--soft",
                      "--timezone", "Europe/Paris")
        listed = budget(data, "list")
        status = httpx.get(f"http://127.0.0.1:{http_port}/v1/budgets/status", params={"tenant": "acme",
                                                                                      "feature": "chat"}).json()
        removed = budget(data, "rm", "chat")
        missing = budget(data, "rm", "chat")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    assert soft.returncode == 0, soft.stderr
    assert [json.loads(line)["id"] for line in listed.stdout.splitlines()] == ["acme", "chat"]
    assert sorted(b["id"] for b in status["budgets"]) == ["acme", "chat"]
    assert removed.returncode == 0 and missing.returncode == 1 and "no budget" in missing.stderr
    assert [json.loads(line)["id"] for line in budget(data, "list").stdout.splitlines()] == ["acme"]


def test_demo_serve_stopped_with_sigterm_stops_its_collector(tmp_path):
    data = str(tmp_path / "data")
    http_port = free_port()
    demo = subprocess.Popen(CLI + ["demo", "--serve", "--storage", data, "--calls", "50", "--days", "1",
                                   "--grpc-port", str(free_port()), "--http-port", str(http_port)],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        for line in demo.stdout:  # serving once it names the dashboard
            if line.startswith("Dashboard:"):
                break
        assert httpx.get(f"http://127.0.0.1:{http_port}/healthz", timeout=5).status_code == 200
        demo.send_signal(signal.SIGTERM)
        assert demo.wait(60) == 0
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
        demo.stdout.close()
    with pytest.raises(httpx.TransportError):  # the collector went with it
        httpx.get(f"http://127.0.0.1:{http_port}/healthz", timeout=2)
    assert report(data, "--by", "feature", "--since", "2d").returncode == 0  # its data directory is free
