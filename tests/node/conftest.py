"""Node.js apps against a real collector: installs the apps' npm packages once per run (from
package-lock.json), a loopback fake of OpenAI's API, one collector for the module.

Without node and npm on the machine the tests are skipped, unless OTEL_COSTS_REQUIRE_NODE=1
(CI), where that is a failure."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from otel_costs_collector.config import CollectorConfig
from tests.collector.conftest import Running, chdb_path  # noqa: F401  (re-exported fixture)
from tests.fake_openai import FakeOpenAI

HERE = Path(__file__).parent


@pytest.fixture(scope="session")
def node_apps() -> Path:
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        if os.environ.get("OTEL_COSTS_REQUIRE_NODE") == "1":
            pytest.fail("node and npm are required (OTEL_COSTS_REQUIRE_NODE=1)")
        pytest.skip("node and npm are not installed")
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
