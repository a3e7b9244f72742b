"""Shared fixtures: a real TracerProvider with CostSpanProcessor over an in-memory exporter."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otel_costs import CostSpanProcessor


class Traced:
    """A provider whose CostSpanProcessor forwards to ``exporter``; ``app`` sees raw spans."""

    def __init__(self, **processor_kwargs):
        self.exporter = InMemorySpanExporter()
        self.app_exporter = InMemorySpanExporter()  # the app's own pipeline, beside ours
        self.provider = TracerProvider()
        self.processor = CostSpanProcessor(SimpleSpanProcessor(self.exporter), **processor_kwargs)
        self.provider.add_span_processor(self.processor)
        self.provider.add_span_processor(SimpleSpanProcessor(self.app_exporter))
        self.tracer = self.provider.get_tracer("tests")

    def spans(self) -> list[ReadableSpan]:
        return list(self.exporter.get_finished_spans())

    def only(self) -> ReadableSpan:
        spans = self.spans()
        assert len(spans) == 1, [s.name for s in spans]
        return spans[0]

    def span_with(self, attributes: dict) -> ReadableSpan:
        with self.tracer.start_as_current_span("call") as span:
            span.set_attributes(attributes)
        return self.spans()[-1]


@pytest.fixture
def traced():
    t = Traced()
    yield t
    t.provider.shutdown()


@pytest.fixture
def make_traced():
    made: list[Traced] = []

    def make(**kwargs) -> Traced:
        made.append(Traced(**kwargs))
        return made[-1]

    yield make
    for t in made:
        t.provider.shutdown()
