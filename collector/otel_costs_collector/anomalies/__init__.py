"""Cost anomalies as they happen (against a seasonal baseline) and month-end forecasts."""
