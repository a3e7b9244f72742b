"""The real ``otel-costs`` command: migrate, serve, stop gracefully on SIGTERM or SIGINT."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from decimal import Decimal

import httpx
import pytest

from tests.collector.spans import SEMCONV, sdk_request

CLI = [sys.executable, "-m", "otel_costs_collector.cli"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(proc: subprocess.Popen, url: str, seconds: float = 60) -> None:
    """Returns once the collector ``proc`` answers ``url``/healthz with 200; fails the test when
    it exits first or ``seconds`` pass."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert proc.poll() is None and time.monotonic() < deadline, "collector did not start"
        time.sleep(0.2)


def count_rows(path: str) -> int:
    # chDB allows one data path per process: read it from a fresh one.
    code = (
        "import clickhouse_connect, sys; c = clickhouse_connect.get_client(interface='chdb', path=sys.argv[1]); "
        "print(c.query('SELECT count() FROM otel_costs.genai_spans').result_rows[0][0])"
    )
    out = subprocess.run([sys.executable, "-c", code, path], capture_output=True, text=True, check=True, timeout=60)
    return int(out.stdout.strip())


def test_migrate_command_reports_and_is_idempotent(tmp_path):
    first = subprocess.run(
        CLI + ["migrate", "--storage", str(tmp_path / "d")], capture_output=True, text=True, timeout=120
    )
    second = subprocess.run(
        CLI + ["migrate", "--storage", str(tmp_path / "d")], capture_output=True, text=True, timeout=120
    )
    assert first.returncode == 0 and "applied: 0001_genai_spans" in first.stdout
    assert second.returncode == 0 and second.stdout.strip() == "schema is up to date"


def test_bad_config_is_one_clear_error(tmp_path):
    out = subprocess.run(
        CLI + ["collector", "--storage", "ftp://x", "--grpc-port", "99999"], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 2
    assert "grpc_port" in out.stderr and "storage" in out.stderr and "Traceback" not in out.stderr


@pytest.mark.parametrize(
    "sig, group",
    [(signal.SIGTERM, False), (signal.SIGINT, False), (signal.SIGINT, True)],
    ids=["SIGTERM", "SIGINT", "Ctrl-C"],  # Ctrl-C at a terminal: SIGINT to every process of the group
)
def test_serve_then_a_stop_signal_flushes_and_exits(tmp_path, sig, group):
    data = str(tmp_path / "data")
    grpc_port, http_port = free_port(), free_port()
    proc = subprocess.Popen(
        CLI + ["collector", "--storage", data, "--grpc-port", str(grpc_port), "--http-port", str(http_port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "OTEL_COSTS_BATCH_MAX_AGE_MS": "60000"},
        start_new_session=group,
    )
    try:
        url = f"http://127.0.0.1:{http_port}"
        wait_healthy(proc, url)
        body = sdk_request([dict(SEMCONV) for _ in range(5)]).SerializeToString()
        with httpx.Client() as client:
            # The batch waits up to 60 s: the signal must flush it rather than drop it.
            import threading

            answer = {}
            sender = threading.Thread(
                target=lambda: answer.setdefault(
                    "r",
                    client.post(
                        url + "/v1/traces", content=body, headers={"Content-Type": "application/x-protobuf"}, timeout=30
                    ),
                )
            )
            sender.start()
            time.sleep(1.0)
            if group:
                os.killpg(proc.pid, sig)  # the collector and its mapping workers
            else:
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
    assert "Traceback" not in stderr
    assert count_rows(data) == 5


def start_collector(data: str) -> tuple[subprocess.Popen, int]:
    grpc_port, http_port = free_port(), free_port()
    proc = subprocess.Popen(
        CLI + ["collector", "--storage", data, "--grpc-port", str(grpc_port), "--http-port", str(http_port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_healthy(proc, f"http://127.0.0.1:{http_port}")
    return proc, http_port


def report(data: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(CLI + ["report", "--storage", data, *args], capture_output=True, text=True, timeout=120)


def run_demo(data: str) -> subprocess.CompletedProcess:
    """``otel-costs demo`` of 300 calls over 5 days on ``data``, on free ports."""
    ports = ["--grpc-port", str(free_port()), "--http-port", str(free_port())]
    return subprocess.run(
        CLI + ["demo", "--storage", data, "--calls", "300", "--days", "5", *ports],
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_demo_then_report_directly_and_through_the_running_collector(tmp_path):
    data = str(tmp_path / "data")
    demo = run_demo(data)
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
    # A second demo on the same storage says so and sends nothing: totals do not double.
    again = run_demo(data)
    assert again.returncode == 0, again.stderr[-2000:]
    assert (
        "already holds the demo's traffic (300 calls" in again.stdout and "sending 300 attributed" not in again.stdout
    )
    assert f"remove {data} and {data}-spool" in again.stdout
    after = report(data, "--by", "tenant,feature", "--since", "6d", "--format", "json")
    assert json.loads(after.stdout) == rows
    assert csv_out.stdout.splitlines()[0] == (
        "tenant,cost_usd,calls,input_tokens,output_tokens,cache_read_tokens,cache_write_tokens,unpriced_calls,"
        "web_searches,web_search_usd,adjustment_usd,error_calls"
    )
    total = sum(Decimal(r["cost_usd"]) for r in rows)
    assert table.stdout.splitlines()[-1].split()[:2] == ["TOTAL", format(total.normalize(), "f")]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--by", "tenant;drop"], "unknown dimension"),
        (["--since", "yesterday"], "not like 24h"),
        (["--from", "2026-99-01"], "not an ISO date"),
        (["--tz", "Nowhere"], "unknown time zone"),
    ],
)
def test_report_bad_parameters_exit_2_without_traceback(tmp_path, args, message):
    out = report(str(tmp_path / "data"), *args)
    assert out.returncode == 2 and message in out.stderr and "Traceback" not in out.stderr


def budget(data: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(CLI + ["budget", *args, "--storage", data], capture_output=True, text=True, timeout=120)


def test_budget_commands_directly_and_through_the_running_collector(tmp_path):
    data = str(tmp_path / "data")
    assert subprocess.run(CLI + ["migrate", "--storage", data], capture_output=True, timeout=120).returncode == 0
    made = budget(data, "set", "acme", "--tenant", "acme", "--amount", "40", "--period", "monthly")
    assert made.returncode == 0, made.stderr
    assert json.loads(made.stdout)["amount_usd"] == "40" and json.loads(made.stdout)["hard"] is True
    bad = budget(data, "set", "x y", "--amount", "0", "--period", "daily")
    assert (
        bad.returncode == 2 and "amount_usd" in bad.stderr and "scope" in bad.stderr and "Traceback" not in bad.stderr
    )
    proc, http_port = start_collector(data)
    try:
        soft = budget(
            data,
            "set",
            "chat",
            "--feature",
            "chat",
            "--amount",
            "8",
            "--period",
            "daily",
            "--soft",
            "--timezone",
            "Europe/Paris",
        )
        listed = budget(data, "list")
        status = httpx.get(
            f"http://127.0.0.1:{http_port}/v1/budgets/status", params={"tenant": "acme", "feature": "chat"}
        ).json()
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
    demo = subprocess.Popen(
        CLI
        + [
            "demo",
            "--serve",
            "--storage",
            data,
            "--calls",
            "50",
            "--days",
            "1",
            "--grpc-port",
            str(free_port()),
            "--http-port",
            str(http_port),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
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


# --- The first hour: read commands never create anything; start-up problems are one line ---

READ_COMMANDS = {
    "report": ["report", "--by", "tenant"],
    "budget list": ["budget", "list"],
    "budget rm": ["budget", "rm", "acme"],
    "budget set": ["budget", "set", "acme", "--tenant", "acme", "--amount", "40", "--period", "monthly"],
}


def quiet_env(**extra: str) -> dict[str, str]:
    """No collector of this machine's answers (a free port stands for 4318), no storage set."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_COSTS_")}
    return {**env, "OTEL_COSTS_HTTP_PORT": str(free_port()), **extra}


def one_error_line(out: subprocess.CompletedProcess) -> str:
    lines = out.stderr.strip().splitlines()
    assert out.returncode == 1 and len(lines) == 1 and lines[0].startswith("error: "), out.stderr
    return lines[0]


@pytest.mark.parametrize("command", READ_COMMANDS.values(), ids=READ_COMMANDS.keys())
@pytest.mark.parametrize("where", ["nothing given", "--storage typo", "OTEL_COSTS_STORAGE typo", "empty directory"])
def test_read_commands_create_nothing_and_say_where_they_looked(tmp_path, command, where):
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    args, env = list(command), quiet_env()
    if where == "--storage typo":
        args += ["--storage", "otel-costs-dta"]
    elif where == "OTEL_COSTS_STORAGE typo":
        env["OTEL_COSTS_STORAGE"] = "otel-costs-dta"
    elif where == "empty directory":
        (cwd / "empty").mkdir()
        args += ["--storage", "empty"]
    out = subprocess.run(CLI + args, capture_output=True, text=True, timeout=120, cwd=cwd, env=env)
    line = one_error_line(out)
    assert "--url" in line and "--storage" in line
    if where == "nothing given":
        assert f"no collector answers on http://127.0.0.1:{env['OTEL_COSTS_HTTP_PORT']}" in line
        assert str(cwd / "otel-costs-data") in line
    elif where == "empty directory":
        assert "is not an otel-costs data directory" in line
    else:
        assert str(cwd / "otel-costs-dta") + " does not exist" in line
    created = sorted(str(p.relative_to(cwd)) for p in cwd.rglob("*"))
    assert created == (["empty"] if where == "empty directory" else [])


def test_read_commands_name_a_missing_database_without_creating_it(tmp_path):
    data = str(tmp_path / "data")
    assert subprocess.run(CLI + ["migrate", "--storage", data], capture_output=True, timeout=120).returncode == 0
    out = subprocess.run(
        CLI + ["budget", "list", "--storage", data, "--database", "costs"],
        capture_output=True,
        text=True,
        timeout=120,
        env=quiet_env(),
    )
    assert "has no otel-costs database 'costs' (it has otel_costs: choose one with --database)" in one_error_line(out)
    code = (
        "import clickhouse_connect, sys; c = clickhouse_connect.get_client(interface='chdb', path=sys.argv[1]); "
        "print(c.command(\"SELECT count() FROM system.databases WHERE name = 'costs'\"))"
    )
    check = subprocess.run([sys.executable, "-c", code, data], capture_output=True, text=True, timeout=60, check=True)
    assert check.stdout.strip() == "0"


def serve(data: str, *extra: str, cwd=None, env=None) -> tuple[subprocess.Popen, int, int, str]:
    """A collector with text logs (``env``: its environment); returns it, its ports and its start-up line."""
    grpc_port, http_port = free_port(), free_port()
    proc = subprocess.Popen(
        CLI
        + [
            "collector",
            "--storage",
            data,
            "--grpc-port",
            str(grpc_port),
            "--http-port",
            str(http_port),
            "--log-format",
            "text",
            *extra,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        cwd=cwd,
        env=env,
    )
    for line in proc.stderr:
        if "collector started" in line:
            drain = threading.Thread(target=proc.stderr.read, daemon=True)  # keep the pipe drained
            drain.start()
            proc.drain = drain  # type: ignore[attr-defined]
            return proc, grpc_port, http_port, line
    raise AssertionError(f"collector did not start: {proc.wait(30)}")


def stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    proc.wait(30)
    proc.drain.join(30)  # type: ignore[attr-defined]
    proc.stderr.close()


def test_text_logs_name_version_ports_storage_and_dashboard(tmp_path):
    from otel_costs import __version__

    data = str(tmp_path / "data")
    proc, grpc_port, http_port, started = serve(data)
    stop(proc)
    for part in (
        f"otel-costs {__version__}",
        f"127.0.0.1:{grpc_port}",
        f"127.0.0.1:{http_port}",
        data,
        f"dashboard http://127.0.0.1:{http_port}/",
    ):
        assert part in started, started


def test_read_commands_find_the_collector_from_anywhere(tmp_path):
    """Run from another directory, with no flags, a report asks the collector on the local
    port; --url reaches it too; a storage path given explicitly is never swapped for it."""
    proc, _, http_port, _ = serve(str(tmp_path / "data"))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    try:
        env = quiet_env(OTEL_COSTS_HTTP_PORT=str(http_port))
        run = lambda *args, env=env: subprocess.run(  # noqa: E731
            CLI + list(args), capture_output=True, text=True, timeout=120, cwd=elsewhere, env=env
        )
        local = run("report", "--format", "json")
        made = run("budget", "set", "acme", "--tenant", "acme", "--amount", "40", "--period", "monthly")
        via_url = run("budget", "list", "--url", f"http://127.0.0.1:{http_port}", env=quiet_env())
        via_env = run("budget", "list", env=quiet_env(OTEL_COSTS_URL=f"http://127.0.0.1:{http_port}/"))
        typo = run("report", "--storage", "data")
    finally:
        stop(proc)
    assert local.returncode == 0 and json.loads(local.stdout)[0]["calls"] == 0, local.stderr
    assert made.returncode == 0, made.stderr
    assert [json.loads(line)["id"] for line in via_url.stdout.splitlines()] == ["acme"]
    assert via_env.stdout == via_url.stdout
    assert "does not exist" in one_error_line(typo)
    assert sorted(p.name for p in elsewhere.iterdir()) == []


@pytest.fixture
def held(tmp_path):
    proc, grpc_port, http_port, _ = serve(str(tmp_path / "data"))
    yield {"data": str(tmp_path / "data"), "grpc": grpc_port, "http": http_port, "pid": proc.pid}
    stop(proc)


@pytest.mark.parametrize("problem", ["data held", "grpc port taken", "http port taken", "bad tls", "bad tokens"])
def test_start_up_problems_are_one_line_before_anything_changes(tmp_path, held, problem):
    data = tmp_path / "new-data"
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate")
    args = ["collector", "--storage", str(data), "--grpc-port", str(free_port()), "--http-port", str(free_port())]
    if problem == "data held":
        args[2] = held["data"]
        expect = f"is held by a running collector (pid {held['pid']}, http://127.0.0.1:{held['http']})"
    elif problem.endswith("port taken"):
        kind = problem.split()[0]
        args[args.index(f"--{kind}-port") + 1] = str(held[kind])
        expect = f"{kind} port 127.0.0.1:{held[kind]} is in use: choose another with --{kind}-port"
    elif problem == "bad tls":
        args += ["--tls-cert-file", str(garbage), "--tls-key-file", str(garbage)]
        expect = f"TLS certificate {garbage} with key {garbage} cannot be loaded"
    else:
        (tmp_path / "tokens.toml").write_text('[[token]]\ntoken = "short"\ntenant = "acme"\n')
        args += ["--auth-tokens-file", str(tmp_path / "tokens.toml")]
        expect = "token must be a printable string of at least 16 characters"
    out = subprocess.run(CLI + args, capture_output=True, text=True, timeout=120)
    assert expect in one_error_line(out)
    assert "Traceback" not in out.stderr and "migration" not in out.stderr
    assert not data.exists() and not (tmp_path / "new-data-spool").exists()
