"""Tracked vs billed: the providers' own cost reports pulled into storage and set beside the
costs the collector stored (pull → store → report, alert)."""
