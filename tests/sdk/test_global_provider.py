"""The set-up mistake that records nothing — a provider with CostSpanProcessor that is never
made the global one — gets exactly one WARNING naming trace.set_tracer_provider.

Each case is a fresh process: the global provider can be set once per process, and the
warning is given once per process."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

SETUP = """
import sys, time
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
import otel_costs.global_provider
from otel_costs import CostSpanProcessor, record_usage
otel_costs.global_provider.CHECK_DELAY_S = 0.3
provider = TracerProvider()
provider.add_span_processor(CostSpanProcessor(SimpleSpanProcessor(InMemorySpanExporter())))
"""
USAGE = "record_usage(provider='openai', model='gpt-4o-mini', input_tokens=10, output_tokens=5)\n"


@pytest.mark.parametrize(
    "body, warnings",
    [
        # Never set: said once at shutdown, however many calls went to the no-op provider.
        ("pass", 1),
        (USAGE * 3, 1),
        # Set right after adding the processor, as the README does: nothing to say.
        ("trace.set_tracer_provider(provider)\n" + USAGE, 0),
        # The provider is handed over explicitly: spans are recorded, nothing to say.
        (USAGE.replace(")\n", ", tracer_provider=provider)\n"), 0),
    ],
    ids=["processor-only", "record_usage-to-no-op", "set-global", "explicit-provider"],
)
def test_one_warning_per_process_naming_the_fix(body, warnings):
    out = subprocess.run(
        [sys.executable, "-c", SETUP + textwrap.dedent(body)], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    lines = [line for line in out.stderr.splitlines() if "set_tracer_provider" in line]
    assert len(lines) == warnings, out.stderr
    assert all("no-op" in line for line in lines)


def test_a_long_running_app_is_told_while_it_runs():
    """A server never shuts down to be told: the check runs again after a delay."""
    code = SETUP + "time.sleep(1.5)\nprint('still running', file=sys.stderr, flush=True)\n"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    lines = out.stderr.splitlines()
    warned = [i for i, line in enumerate(lines) if "set_tracer_provider" in line]
    assert len(warned) == 1 and warned[0] < lines.index("still running"), out.stderr
