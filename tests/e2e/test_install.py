"""What users install: the built wheel, installed (not editable) into fresh venvs outside the
source tree, as ``pip install otel-costs[collector]`` from a package index or the Docker image
would install it.

The wheel is ``$OTEL_COSTS_WHEEL`` when set (``.ci/run`` builds the sdist and, from it, the
wheel with PyPA ``build``); otherwise this module builds both the same way. Every program runs
with its working directory outside the checkout, so nothing is imported from the source tree.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import tomllib
import zipfile
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from genai_prices import Usage, calc_price

from tests.e2e.conftest import INSTALL_REPORT
from tests.e2e.test_cli import free_port, wait_healthy

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]
# Where each installed package comes from in the source tree.
PACKAGES = {"otel_costs": ROOT / "otel_costs", "otel_costs_collector": ROOT / "collector" / "otel_costs_collector"}

# The calls the installed SDK sends: (tenant, provider, model, input tokens, output tokens).
CALLS = {
    "sdk-only": ("globex", "anthropic", "claude-sonnet-4-5", 12_000, 800),
    "full": ("acme", "openai", "gpt-4o", 1_500, 300),
}

# The SDK's README path, as an app with only `pip install otel-costs` runs it: the processor
# on the app's provider (OTLP/gRPC to OTEL_EXPORTER_OTLP_ENDPOINT), attribution, record_usage.
APP = """
import sys
import otel_costs
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from otel_costs import CostSpanProcessor, attribute_to, record_usage

tenant, provider_name, model, input_tokens, output_tokens = sys.argv[1:6]
provider = TracerProvider()
provider.add_span_processor(CostSpanProcessor())
trace.set_tracer_provider(provider)
with attribute_to(tenant_id=tenant, feature="nightly-report"):
    record_usage(provider=provider_name, model=model, input_tokens=int(input_tokens), output_tokens=int(output_tokens))
provider.shutdown()
print(otel_costs.__file__)
"""


def _run(args: list[str], cwd: Path, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, cwd=cwd, timeout=kwargs.pop("timeout", 600), **kwargs)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    given = os.environ.get("OTEL_COSTS_WHEEL")
    if given:
        return Path(given).resolve()
    out = tmp_path_factory.mktemp("dist")
    # The sdist, then the wheel built from it: what CI and a package index get.
    built = _run([sys.executable, "-m", "build", "--outdir", str(out), str(ROOT)], cwd=out)
    assert built.returncode == 0, built.stdout[-2000:] + built.stderr[-2000:]
    (found,) = out.glob("*.whl")
    return found


def _venv(tmp_path_factory, name: str, requirement: str) -> Path:
    home = tmp_path_factory.mktemp(name)
    subprocess.run([sys.executable, "-m", "venv", str(home / "venv")], check=True, timeout=300)
    pip = [str(home / "venv" / "bin" / "python"), "-m", "pip", "--disable-pip-version-check", "--quiet"]
    installed = _run([*pip, "install", requirement], cwd=home, timeout=1200)
    assert installed.returncode == 0, installed.stderr[-3000:]
    return home / "venv" / "bin"


@pytest.fixture(scope="module")
def full(tmp_path_factory, wheel) -> Path:
    """The bin/ of a venv holding the wheel with the [collector] extra."""
    return _venv(tmp_path_factory, "full", f"{wheel}[collector]")


@pytest.fixture(scope="module")
def sdk_only(tmp_path_factory, wheel) -> Path:
    """The bin/ of a venv holding the wheel alone (the SDK's dependencies, no extra)."""
    return _venv(tmp_path_factory, "sdk-only", str(wheel))


def test_the_wheel_holds_every_module_and_data_file_and_nothing_else(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {
        f"{package}/{path.relative_to(folder).as_posix()}"
        for package, folder in PACKAGES.items()
        for path in folder.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }
    assert expected - names == set(), "in the source tree, not in the wheel"
    info = f"otel_costs-{VERSION}.dist-info/"
    assert {name for name in names if not name.startswith(info)} == expected, "in the wheel, not in the source tree"
    metadata = zipfile.ZipFile(wheel).read(info + "METADATA").decode()
    assert f"\nVersion: {VERSION}\n" in metadata
    # Sanity: the data files that the collector cannot start without.
    assert "otel_costs_collector/storage/migrations/0001_genai_spans.sql" in names
    assert "otel_costs_collector/dashboard/dashboard.css" in names and "otel_costs/py.typed" in names
    INSTALL_REPORT.append(
        f"{wheel.name}: {wheel.stat().st_size // 1024} KiB, {len(names)} files, every source file in it"
    )


def test_the_sdk_alone_says_which_extra_the_command_needs(sdk_only, tmp_path):
    version = _run([str(sdk_only / "python"), "-c", "import otel_costs; print(otel_costs.__version__)"], cwd=tmp_path)
    assert version.stdout.strip() == VERSION, version.stderr
    for args in (["--help"], ["report"], ["collector"]):
        out = _run([str(sdk_only / "otel-costs"), *args], cwd=tmp_path, timeout=60)
        assert out.returncode == 1, out
        assert "Traceback" not in out.stderr and "ModuleNotFoundError" not in out.stderr
        assert "pip install 'otel-costs[collector]'" in out.stderr and "click" in out.stderr
    INSTALL_REPORT.append("the wheel without extras: the SDK imports, `otel-costs` names the [collector] extra")


def test_the_installed_collector_serves_what_the_installed_sdk_sends(full, sdk_only, tmp_path):
    version = _run([str(full / "otel-costs"), "--version"], cwd=tmp_path, timeout=60)
    assert version.returncode == 0 and version.stdout.split()[-1] == VERSION, version

    grpc_port, http_port = free_port(), free_port()
    log = (tmp_path / "collector.log").open("w+")
    proc = subprocess.Popen(
        [str(full / "otel-costs"), "collector", "--storage", str(tmp_path / "data")]
        + ["--grpc-port", str(grpc_port), "--http-port", str(http_port)],
        cwd=tmp_path,
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "OTEL_COSTS_BATCH_MAX_AGE_MS": "200"},
    )
    url = f"http://127.0.0.1:{http_port}"
    try:
        wait_healthy(proc, url, seconds=120)
        env = {
            **os.environ,
            "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{grpc_port}",
            "OTEL_EXPORTER_OTLP_INSECURE": "true",
        }
        for venv, name in ((sdk_only, "sdk-only"), (full, "full")):
            tenant, provider, model, input_tokens, output_tokens = CALLS[name]
            sent = _run(
                [str(venv / "python"), "-c", APP, tenant, provider, model, str(input_tokens), str(output_tokens)],
                cwd=tmp_path,
                env=env,
                timeout=120,
            )
            assert sent.returncode == 0, sent.stderr[-3000:]
            assert Path(sent.stdout.strip()).is_relative_to(venv.parent), "the SDK came from the source tree"

        cli = [str(full / "otel-costs")]
        rows = _poll(lambda: _report(cli, url, tmp_path), lambda rows: sum(r["calls"] for r in rows) == 2)
        for tenant, provider, model, input_tokens, output_tokens in CALLS.values():
            expected = calc_price(
                Usage(input_tokens=input_tokens, output_tokens=output_tokens), model_ref=model, provider_id=provider
            ).total_price
            (row,) = [r for r in rows if r["tenant"] == tenant]
            assert Decimal(row["cost_usd"]) == expected and row["calls"] == 1, row

        calls = _run([*cli, "calls", "--url", url, "--format", "json"], cwd=tmp_path, timeout=120)
        assert calls.returncode == 0, calls.stderr
        listed = json.loads(calls.stdout)["calls"]
        assert sorted(c["tenant"] for c in listed) == ["acme", "globex"]

        page = httpx.get(url + "/", timeout=30)
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        assert "acme" in page.text and "globex" in page.text
        helped = _run([*cli, "reconcile", "--help"], cwd=tmp_path, timeout=60)
        assert helped.returncode == 0 and "Usage: otel-costs reconcile" in helped.stdout, helped.stderr
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        log.seek(0)
        logs = log.read()
        log.close()
    assert proc.returncode == 0, logs[-3000:]
    assert f"otel-costs {VERSION} collector started" in logs and "Traceback" not in logs
    INSTALL_REPORT.append(
        f"the wheel with [collector], installed non-editable: the collector {VERSION} stored and served "
        f"{len(CALLS)} costed calls (report, calls, dashboard) sent by the installed SDK, then stopped cleanly"
    )


def _report(cli: list[str], url: str, cwd: Path) -> list[dict]:
    out = _run([*cli, "report", "--url", url, "--by", "tenant", "--since", "1d", "--format", "json"], cwd, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def _poll(read, done, seconds: float = 60.0):
    deadline = time.monotonic() + seconds
    while not done(value := read()) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert done(value), value
    return value
