"""The raw table's columns, in the order the mapping fills a row and the insert names them."""

from __future__ import annotations

__all__ = ["COLUMNS"]

#: Column order of ``genai_spans`` inserts (migrations/0001_genai_spans.sql, 0005, 0013, 0014).
COLUMNS: tuple[str, ...] = (
    "timestamp",
    "duration_ns",
    "trace_id",
    "span_id",
    "parent_span_id",
    "service",
    "span_name",
    "provider",
    "request_model",
    "response_model",
    "operation",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
    "cache_write_1h_tokens",
    "web_searches",
    "cost_input",
    "cost_output",
    "cost_cache_read",
    "cost_cache_write",
    "cost_web_search",
    "cost_total",
    "pricing_status",
    "pricing_source",
    "pricing_model",
    "pricing_error",
    "priced_by",
    "service_tier",
    "user_id",
    "tenant_id",
    "feature",
    "tags",
    "status_code",
    "error_type",
    "response_id",
    "counted_on",
    "suspect_of",
    "request_token",
)
