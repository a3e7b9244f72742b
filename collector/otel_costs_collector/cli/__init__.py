"""The otel-costs command: collector, reports, budgets, demo, and locating the data they read."""
