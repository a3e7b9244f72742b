"""The ingest benchmark on this checkout and on a git ref, side by side, and their ratio.

Runs this checkout's ``bench/collector_ingest.py`` against this checkout's code and against a
worktree of ``REF``'s (the collector, and the SDK that makes the requests, come from the
checkout under test: the same load, each side's code), alternately, ``--rounds`` times each,
and prints every run's figures, the medians and this / REF. Alternating in one run is what
makes a ratio mean something on a shared, noisy machine.

    python bench/compare.py REF [--rounds 2] [-- collector_ingest arguments...]

    python bench/compare.py origin/main -- --seconds 15 --inflight 128
    python bench/compare.py 47f4319 -- --seconds 15 --inflight 128 --unpriced

Arguments after ``--`` go to collector_ingest.py. Exits non-zero when a run fails.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]
FIGURES = {
    "spans_per_s": ("spans/s", "{:,.0f}"),
    "cpu_us_per_span": ("CPU µs/span", "{:.1f}"),
    "p50_ms": ("fresh p50 ms", "{:.0f}"),
    "p99_ms": ("fresh p99 ms", "{:.0f}"),
    "peak_rss_mib": ("peak RSS MiB", "{:.0f}"),
}


def run(checkout: Path, args: list[str]) -> dict[str, float]:
    """One benchmark run from ``checkout``: its figures (collector_ingest.py --json)."""
    # The checkout's own packages first, ahead of an editable install of another one.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(checkout / "collector"), str(checkout)])}
    done = subprocess.run(
        [sys.executable, str(HERE / "bench" / "collector_ingest.py"), *args, "--json"],
        capture_output=True,
        text=True,
        env=env,
        cwd=checkout,
    )
    if done.returncode != 0:
        raise SystemExit(f"the benchmark failed in {checkout}:\n{done.stderr[-3000:]}")
    (line,) = [ln for ln in done.stdout.splitlines() if ln.startswith("json: ")]
    return json.loads(line[len("json: ") :])


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    passed: list[str] = []
    if "--" in argv:
        at = argv.index("--")
        argv, passed = argv[:at], argv[at + 1 :]
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("ref", help="the git ref to compare this checkout with")
    ap.add_argument("--rounds", type=int, default=2, help="runs of each checkout, alternated")
    args = ap.parse_args(argv)

    commit = subprocess.run(
        ["git", "rev-parse", "--short", args.ref], cwd=HERE, capture_output=True, text=True, check=True
    ).stdout.strip()
    with tempfile.TemporaryDirectory(prefix="otel-costs-compare-") as tmp:
        other = Path(tmp) / commit
        subprocess.run(
            ["git", "worktree", "add", "--detach", str(other), commit], cwd=HERE, check=True, capture_output=True
        )
        try:
            results: dict[str, list[dict[str, float]]] = {"this": [], commit: []}
            for i in range(args.rounds):
                for name, checkout in (
                    (("this", HERE), (commit, other)) if i % 2 == 0 else ((commit, other), ("this", HERE))
                ):
                    figures = run(checkout, passed)
                    results[name].append(figures)
                    print(
                        f"round {i + 1} {name:>8}: "
                        + ", ".join(f"{FIGURES[k][0]} {figures[k]}" for k in FIGURES if figures.get(k) is not None),
                        flush=True,
                    )
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(other)], cwd=HERE, capture_output=True)
    print(f"\nmedians of {args.rounds} run(s) each, alternated ({' '.join(passed) or 'defaults'}):")
    print(f"{'':>14} {'this':>12} {commit:>12} {'this / ref':>11}")
    for key, (label, fmt) in FIGURES.items():
        mine = [r[key] for r in results["this"] if r.get(key) is not None]
        theirs = [r[key] for r in results[commit] if r.get(key) is not None]
        if not mine or not theirs:
            continue
        a, b = statistics.median(mine), statistics.median(theirs)
        ratio = f"{a / b:.2f}×" if b else "—"
        print(f"{label:>14} {fmt.format(a):>12} {fmt.format(b):>12} {ratio:>11}")


if __name__ == "__main__":
    main()
