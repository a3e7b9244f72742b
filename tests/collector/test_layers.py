"""No layer imports upward: receive → pipeline → mapping → storage, in data-flow order. A
module may import its own layer or one further down, never one nearer the receivers, and the
write path never imports the readers (reports, budgets, reconcile, revenue, dashboard, cli)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import otel_costs_collector

ROOT = Path(otel_costs_collector.__file__).parent
FLOW = ["receive", "pipeline", "mapping", "storage"]
READERS = {"reports", "budgets", "reconcile", "revenue", "dashboard", "cli"}


def imported_packages(path: Path) -> set[str]:
    """The otel_costs_collector subpackages a module imports, lazily or not."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] == "otel_costs_collector" and len(parts) > 1:
                found.add(parts[1])
    return found


@pytest.mark.parametrize("layer", FLOW)
def test_no_layer_imports_upward(layer):
    modules = sorted((ROOT / layer).glob("*.py"))
    assert modules
    upward = set(FLOW[: FLOW.index(layer)]) | READERS
    offending = {str(m.relative_to(ROOT)): sorted(imported_packages(m) & upward) for m in modules}
    assert {m: ups for m, ups in offending.items() if ups} == {}


def test_every_module_docs_layout_names_exists():
    """docs/layout.md walks a span through the modules: each one it names is in the tree, and
    each module of the write path's layers is named there."""
    import re

    repo = Path(__file__).resolve().parents[2]
    text = (repo / "docs" / "layout.md").read_text(encoding="utf-8")
    named = set(re.findall(r"`([\w/]+\.py)`", text))
    sources = {p.relative_to(repo).as_posix() for p in repo.glob("*/**/*.py") if ".venv" not in p.parts}
    missing = sorted(n for n in named if not any(s == n or s.endswith("/" + n) for s in sources))
    assert not missing, missing
    unnamed = sorted(
        f"{layer}/{m.name}"
        for layer in FLOW
        for m in (repo / "collector" / "otel_costs_collector" / layer).glob("*.py")
        if m.name != "__init__.py" and m.name not in {n.rsplit("/", 1)[-1] for n in named}
    )
    assert not unnamed, unnamed
