"""The public API is exactly what __all__ says (as httpx pins its own)."""

import __future__

import subprocess
import sys
import types

import otel_costs


def test_all_is_every_public_name_of_the_module():
    # Derived from the module (as httpx's tests/test_exported_members.py): a name imported
    # into otel_costs without being exported, or exported without existing, fails here.
    public = sorted(
        name
        for name, value in vars(otel_costs).items()
        if (not name.startswith("_") or name == "__version__")
        and not isinstance(value, types.ModuleType)
        and not isinstance(value, __future__._Feature)
    )
    assert otel_costs.__all__ == public


def test_every_public_name_exists():
    for name in otel_costs.__all__:
        assert getattr(otel_costs, name) is not None


def test_sdk_import_does_not_load_collector_dependencies():
    code = (
        "import sys, otel_costs; "
        "bad = [m for m in ('grpc', 'clickhouse_connect', 'chdb', 'otel_costs_collector', 'httpx', "
        "'opentelemetry.instrumentation.httpx') if m in sys.modules]; "
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
