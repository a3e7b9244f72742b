"""Node.js apps against a real collector: installs the apps' npm packages once per run (from
package-lock.json), a loopback fake of OpenAI's API, one collector for the module.

Without node and npm on the machine the tests are skipped, unless OTEL_COSTS_REQUIRE_NODE=1
(CI), where that is a failure."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from otel_costs_collector.config import CollectorConfig
from tests.collector.conftest import Running, chdb_path  # noqa: F401  (re-exported fixture)
from tests.fake_openai import FakeOpenAI
from tests.packages import LATEST

HERE = Path(__file__).parent


#: The newest release of each major version the apps are tested with (OTEL_COSTS_PACKAGES=latest).
LATEST_RANGES = {
    "ai6": {"ai": "^6", "@ai-sdk/openai": "^3"},
    "ai7": {"ai": "^7", "@ai-sdk/openai": "^4", "@ai-sdk/otel": "^1"},
}


@pytest.fixture(scope="session")
def node_apps(tmp_path_factory) -> Path:
    """The apps' directory, their npm packages installed: as package-lock.json pins them, or
    with OTEL_COSTS_PACKAGES=latest (.ci/latest) the newest of each major version (npm
    resolves them now; a copy of the apps in a directory of the run's)."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        if os.environ.get("OTEL_COSTS_REQUIRE_NODE") == "1":
            pytest.fail("node and npm are required (OTEL_COSTS_REQUIRE_NODE=1)")
        pytest.skip("node and npm are not installed")
    if LATEST:
        root = tmp_path_factory.mktemp("node-latest")
        for name in ("package.json", "otel.mjs", "scenarios.mjs"):
            shutil.copy(HERE / name, root / name)
        for app, ranges in LATEST_RANGES.items():
            (root / app).mkdir()
            shutil.copy(HERE / app / "app.mjs", root / app / "app.mjs")
            manifest = json.loads((HERE / app / "package.json").read_text())
            manifest["dependencies"].update(ranges)
            (root / app / "package.json").write_text(json.dumps(manifest, indent=2))
        subprocess.run(
            [npm, "install", "--no-audit", "--no-fund", "--loglevel=error"], cwd=root, check=True, timeout=600
        )
        listed = subprocess.run([npm, "ls", "--all", "--depth=1", "ai"], cwd=root, capture_output=True, text=True)
        print("node packages (latest):", listed.stdout)
        return root
    lock, installed = HERE / "package-lock.json", HERE / "node_modules" / ".package-lock.json"
    if not installed.exists() or installed.stat().st_mtime < lock.stat().st_mtime:
        subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=HERE, check=True, timeout=600)
    return HERE


@pytest.fixture(scope="module")
def fake_openai():
    fake = FakeOpenAI()
    yield fake
    fake.close()


@pytest.fixture(scope="module")
def node_collector(chdb_path, tmp_path_factory):  # noqa: F811
    spool = tmp_path_factory.mktemp("node-spool")
    running = Running(
        CollectorConfig(
            storage=chdb_path,
            database=f"node_{uuid.uuid4().hex[:8]}",
            grpc_port=0,
            http_port=0,
            batch_max_age_ms=100,
            log_format="text",
            spool_dir=str(spool),
        )
    )
    yield running
    running.stop()
