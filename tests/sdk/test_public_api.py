"""The public API is exactly what __all__ says (as httpx pins its own)."""

import subprocess
import sys

import otel_costs


def test_all_is_pinned():
    assert otel_costs.__all__ == [
        "Attribution",
        "BudgetExceeded",
        "BudgetGuard",
        "CostSpanProcessor",
        "HttpxHooks",
        "PriceOverrides",
        "PriceOverridesError",
        "PricingStatus",
        "__version__",
        "attribute_to",
        "check_budget",
        "current_attribution",
        "enforce_budget",
        "instrument_httpx",
        "record_usage",
    ]


def test_every_public_name_exists():
    for name in otel_costs.__all__:
        assert getattr(otel_costs, name) is not None


def test_sdk_import_does_not_load_collector_dependencies():
    code = (
        "import sys, otel_costs; "
        "bad = [m for m in ('grpc', 'clickhouse_connect', 'chdb', 'collector', 'httpx', "
        "'opentelemetry.instrumentation.httpx') if m in sys.modules]; "
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
