"""The real ``otel-costs`` command: migrate, serve, stop gracefully on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

import httpx

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


def test_serve_then_sigterm_flushes_and_exits(tmp_path):
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
            # The batch waits up to 60 s: SIGTERM must flush it rather than drop it.
            import threading

            answer = {}
            sender = threading.Thread(target=lambda: answer.setdefault("r", client.post(
                url + "/v1/traces", content=body, headers={"Content-Type": "application/x-protobuf"}, timeout=30)))
            sender.start()
            time.sleep(1.0)
            proc.send_signal(signal.SIGTERM)
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
