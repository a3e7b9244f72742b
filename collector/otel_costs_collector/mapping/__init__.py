"""Spans to rows (pure), the one-cost-per-call rule across batches, and the processes that map."""
