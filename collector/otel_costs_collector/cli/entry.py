"""The ``otel-costs`` command's entry point: says which extra to install when the collector's
packages are missing, instead of failing with ``ModuleNotFoundError``.

``pip install otel-costs`` installs the SDK and this command; the command needs
``otel-costs[collector]``. Imports only the standard library until that is checked.
"""

from __future__ import annotations

import re
import sys
from importlib import metadata

__all__ = ["main", "missing_collector_packages"]

_DIST = "otel-costs"
_EXTRA = "collector"
_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def missing_collector_packages() -> list[str]:
    """The distributions of the ``[collector]`` extra (as pyproject.toml lists them) that are
    not installed. [] when otel-costs is not installed as a distribution (a source tree)."""
    try:
        requirements = metadata.requires(_DIST) or []
    except metadata.PackageNotFoundError:
        return []
    missing = []
    for requirement in requirements:
        name, _, marker = requirement.partition(";")
        if not re.search(rf"""extra\s*==\s*["']{_EXTRA}["']""", marker):
            continue
        match = _NAME.match(name)
        if match is None:
            continue
        try:
            metadata.version(match.group(1))
        except metadata.PackageNotFoundError:
            missing.append(match.group(1))
    return missing


def main() -> None:
    missing = missing_collector_packages()
    if missing:
        print(
            f"otel-costs: the command needs the collector's packages (missing: {', '.join(missing)}). "
            f"Install them with: pip install 'otel-costs[{_EXTRA}]'",
            file=sys.stderr,
        )
        sys.exit(1)
    from otel_costs_collector.cli.main import main as cli_main

    cli_main()
