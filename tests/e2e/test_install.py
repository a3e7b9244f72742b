"""``pip install otel-costs`` without the ``[collector]`` extra: the ``otel-costs`` command it
installs says which extra to install, instead of failing with ModuleNotFoundError.

The project is installed by pip, without dependencies, into a fresh venv: the real console
script, with none of the collector's packages (nor any other) beside it."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_the_command_without_the_collector_extra_names_the_extra(tmp_path):
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    for package in ("otel_costs", "collector"):
        shutil.copytree(ROOT / package, source / package, ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(tmp_path / "venv")], check=True, timeout=120)
    # Built as pip builds it for a user (an isolated build environment from the package index).
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--disable-pip-version-check",
            "--quiet",
            "--python",
            str(tmp_path / "venv" / "bin" / "python"),
            "install",
            "--no-deps",
            str(source),
        ],
        check=True,
        capture_output=True,
        timeout=600,
    )

    for args in (["--help"], ["report"], ["collector"]):
        out = subprocess.run(
            [str(tmp_path / "venv" / "bin" / "otel-costs"), *args], capture_output=True, text=True, timeout=60
        )
        assert out.returncode == 1, out
        assert "Traceback" not in out.stderr and "ModuleNotFoundError" not in out.stderr
        assert "pip install 'otel-costs[collector]'" in out.stderr and "click" in out.stderr
