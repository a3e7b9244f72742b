"""``python -m otel_costs_collector.cli``: the otel-costs command."""

from otel_costs_collector.cli.main import main

main()
