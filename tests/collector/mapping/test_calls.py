"""otel_costs_collector.mapping.calls: one cost per provider call across requests and batches, and attribution
from an ancestor span, on rows the real mapping made of hand-built OTLP spans."""

from __future__ import annotations

import os
from decimal import Decimal
from time import time_ns

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import KeyValue

from otel_costs.pricing import Pricer
from otel_costs_collector.mapping.calls import CallIndex
from otel_costs_collector.mapping.rows import LINK_TENANT, LINK_USER, map_request
from otel_costs_collector.pipeline.held import HeldCalls
from otel_costs_collector.storage.columns import COLUMNS

from ..spans import any_value

PRICER = Pricer()
CHAT = {
    "gen_ai.operation.name": "chat",
    "gen_ai.provider.name": "openai",
    "gen_ai.request.model": "gpt-4o-mini",
    "gen_ai.usage.input_tokens": 1800,
    "gen_ai.usage.output_tokens": 120,
}
# OpenInference's LLM span around the same call (a second instrumentation), same usage
OPENINFERENCE = {
    "openinference.span.kind": "LLM",
    "llm.provider": "openai",
    "llm.model_name": "gpt-4o-mini",
    "llm.token_count.prompt": 1800,
    "llm.token_count.completion": 120,
}
SECOND = {**CHAT, "gen_ai.usage.input_tokens": 700, "gen_ai.usage.output_tokens": 40}
# A span of an instrumentation the rules do not know, holding the sum of two calls
SUM = {**CHAT, "gen_ai.usage.input_tokens": 2500, "gen_ai.usage.output_tokens": 160}
STEP = {
    "ai.settings.context.tenantId": "acme",
    "ai.settings.context.userId": "u_7",
    "ai.settings.context.feature": "support-bot",
}
T0 = 1_764_000_000_000_000_000


class Trace:
    """Span ids of one trace, and spans of it (id, parent, attributes, start, end in s)."""

    def __init__(self) -> None:
        self.trace_id = os.urandom(16)

    def request(self, *spans: tuple[str, str, dict, float, float]) -> ExportTraceServiceRequest:
        request = ExportTraceServiceRequest()
        scope = request.resource_spans.add().scope_spans.add()
        for span_id, parent, attrs, start, end in spans:
            span = scope.spans.add(
                trace_id=self.trace_id,
                span_id=_id(span_id),
                parent_span_id=_id(parent) if parent else b"",
                name=span_id,
                start_time_unix_nano=T0 + int(start * 1e9),
                end_time_unix_nano=T0 + int(end * 1e9),
            )
            span.attributes.extend(KeyValue(key=k, value=any_value(v)) for k, v in attrs.items())
        return request


def _id(name: str) -> bytes:
    return name.encode().ljust(8, b"_")[:8]


def hexid(name: str) -> str:
    return _id(name).hex()


def decide(index: CallIndex, request: ExportTraceServiceRequest):
    result = map_request(request, PRICER)
    return index.decide(result.rows, result.links)


def stored(index: CallIndex, *requests: ExportTraceServiceRequest) -> list:
    """The rows each request gives, in turn, then those released from waiting."""
    rows = [row for request in requests for row in decide(index, request).now]
    return rows + index.due()


def col(row, name):
    return row[COLUMNS.index(name)]


def price(attrs) -> Decimal:
    from genai_prices import Usage, calc_price

    return calc_price(
        Usage(input_tokens=attrs["gen_ai.usage.input_tokens"], output_tokens=attrs["gen_ai.usage.output_tokens"]),
        model_ref="gpt-4o-mini",
        provider_id="openai",
    ).total_price


@pytest.mark.parametrize("inner_first", [True, False], ids=["inner-first", "outer-first"])
def test_two_instrumentations_on_one_call_in_two_requests_count_it_once(inner_first):
    trace, index = Trace(), CallIndex()
    inner = trace.request(("chat", "llm", CHAT, 0.1, 0.9))
    outer = trace.request(("llm", "", OPENINFERENCE, 0.0, 1.0))
    first, second = (inner, outer) if inner_first else (outer, inner)
    rows = stored(index, first, second)
    counted = [r for r in rows if col(r, "pricing_status") == "priced"]
    assert len(rows) == 2 and len(counted) == 1 and col(counted[0], "cost_total") == price(CHAT)
    other = next(r for r in rows if r is not counted[0])
    assert col(other, "pricing_status") == "counted_elsewhere" and col(other, "cost_total") == 0
    assert col(other, "counted_on") == col(counted[0], "span_id")
    # the innermost span carries the cost when it arrives first, as spans end
    assert col(counted[0], "span_id") == hexid("chat" if inner_first else "llm")
    assert index.suspects == 0


def test_an_unknown_span_above_two_calls_is_an_aggregate_when_it_arrives_later():
    trace, index = Trace(), CallIndex()
    rows = stored(
        index,
        trace.request(("a", "run", CHAT, 0.1, 0.4), ("b", "step", SECOND, 0.5, 0.8), ("step", "run", {}, 0.45, 0.85)),
        trace.request(("run", "", SUM, 0.0, 1.0)),
    )
    outer = [r for r in rows if col(r, "span_id") == hexid("run")]
    calls = [r for r in rows if r not in outer]
    assert [col(r, "pricing_status") for r in calls] == ["priced", "priced"]
    assert col(outer[0], "pricing_status") == "aggregate" and col(outer[0], "cost_total") == 0
    assert sum(col(r, "cost_total") for r in calls + outer) == price(CHAT) + price(SECOND)


def test_a_call_below_a_costed_span_that_arrived_first_is_counted_and_flagged():
    """Another usage below a call already stored: the rules cannot tell which is right, so
    both count and the inner row names the outer (suspect_of) for the reports."""
    trace, index = Trace(), CallIndex()
    outer = decide(index, trace.request(("run", "", SUM, 0.0, 1.0))).now
    inner = decide(index, trace.request(("a", "run", CHAT, 0.1, 0.4))).now
    assert col(outer[0], "pricing_status") == col(inner[0], "pricing_status") == "priced"
    assert col(inner[0], "suspect_of") == hexid("run") and index.suspects == 1


def test_the_same_response_in_another_trace_is_the_same_call():
    """OpenLLMetry's Anthropic span is a root of its own beside the SDK's span: only the
    response id (and the usage, and the time) links them."""
    index = CallIndex()
    sdk = {**CHAT, "gen_ai.response.id": "chatcmpl-42"}
    first = decide(index, Trace().request(("sdk", "", sdk, 0.1, 0.9))).now
    second = decide(
        index, Trace().request(("wrap", "", {**OPENINFERENCE, "gen_ai.response.id": "chatcmpl-42"}, 0.0, 1.0))
    ).now
    assert col(first[0], "pricing_status") == "priced"
    assert col(second[0], "pricing_status") == "counted_elsewhere" and col(second[0], "counted_on") == hexid("sdk")
    later = decide(index, Trace().request(("again", "", sdk, 5.0, 6.0))).now  # a server reusing ids
    assert col(later[0], "pricing_status") == "priced"


def test_a_call_takes_the_attribution_of_an_ancestor_that_arrives_later():
    """The Vercel AI SDK 7 puts runtimeContext on the agent and step spans, not on the chat
    span that carries the cost; the exporter may send the chat span first."""
    trace, index = Trace(), CallIndex()
    first = decide(index, trace.request(("chat", "step", CHAT, 0.1, 0.9)))
    assert first.now == [] and [col(r, "span_id") for r in first.held] == [hexid("chat")]
    assert index.due() == []  # still waiting
    agent = {
        "gen_ai.operation.name": "invoke_agent",
        **{k: v for k, v in CHAT.items() if k != "gen_ai.operation.name"},
        **STEP,
    }
    second = decide(index, trace.request(("step", "agent", STEP, 0.05, 0.95), ("agent", "", agent, 0.0, 1.0)))
    assert [col(r, "pricing_status") for r in second.now] == ["aggregate"]
    (released,) = index.due()
    assert (col(released, "tenant_id"), col(released, "user_id"), col(released, "feature")) == (
        "acme",
        "u_7",
        "support-bot",
    )
    assert col(released, "cost_total") == price(CHAT) and index.held_rows == 0


def test_an_ancestor_that_arrives_before_the_call_still_attributes_it():
    """Exporters that send spans concurrently (OTel JS's SimpleSpanProcessor) may deliver the
    step span before the chat span below it."""
    trace, index = Trace(), CallIndex()
    assert decide(index, trace.request(("step", "", STEP, 0.0, 1.0))).now == []
    decided = decide(index, trace.request(("chat", "step", CHAT, 0.1, 0.9)))
    assert decided.held == [] and col(decided.now[0], "tenant_id") == "acme"


def test_a_call_resolved_within_its_batch_is_not_held():
    trace, index = Trace(), CallIndex()
    decided = decide(index, trace.request(("chat", "step", CHAT, 0.1, 0.9), ("step", "", STEP, 0.0, 1.0)))
    assert decided.held == [] and col(decided.now[0], "tenant_id") == "acme"
    assert decided.changes[hexid("chat")][4] == "acme"  # recorded for a replay


@pytest.mark.parametrize("ending", ["root", "deadline"])
def test_a_call_with_no_attributed_ancestor_is_stored_as_it_is(ending):
    now = [100.0]
    trace, index = Trace(), CallIndex(wait_s=60, clock=lambda: now[0])
    assert decide(index, trace.request(("chat", "handler", CHAT, 0.1, 0.9))).held
    if ending == "root":
        decide(index, trace.request(("handler", "", {"http.route": "/chat"}, 0.0, 1.0)))
    else:
        now[0] += 59
        assert index.due() == []
        now[0] += 1
    (released,) = index.due()
    assert col(released, "tenant_id") == "" and col(released, "cost_total") == price(CHAT)


def test_memory_is_bounded_and_waiting_calls_are_released_not_lost():
    index = CallIndex(max_nodes=50, max_held=10)
    held = 0
    for _ in range(40):
        held += len(decide(index, Trace().request(("chat", "parent", CHAT, 0.1, 0.9))).held)
    assert held == 10  # beyond max_held, calls are stored without waiting
    assert index.remembered <= 50
    assert len(index.due()) + index.held_rows == 10


def test_a_replay_applies_what_was_decided_whatever_is_known_since(tmp_path):
    """Decisions are written ahead of the insert: a batch replayed by a new process (which has
    not seen the inner span) gets the rows the first attempt inserted into some tables."""
    trace = Trace()
    held = HeldCalls(CallIndex(), str(tmp_path))
    assert (
        len(held.before(map_request(trace.request(("chat", "llm", {**CHAT, **STEP}, 0.1, 0.9)), PRICER).rows, [], "t0"))
        == 1
    )
    held.after("t0")
    outer = trace.request(("llm", "", OPENINFERENCE, 0.0, 1.0))
    (first,) = held.before(map_request(outer, PRICER).rows, [], "t1")
    assert col(first, "pricing_status") == "counted_elsewhere"
    # the insert of t1 did not return (a crash): a new process replays it
    (again,) = HeldCalls(CallIndex(), str(tmp_path)).before(map_request(outer, PRICER).rows, [], "t1")
    assert again == first
    (fresh,) = HeldCalls(CallIndex(), str(tmp_path / "elsewhere")).before(map_request(outer, PRICER).rows, [], "t1")
    assert col(fresh, "pricing_status") == "priced"  # what the replay would be without the record


class Storage:
    """The insert a settle calls: what was written, by token; ``down`` makes it fail."""

    def __init__(self) -> None:
        self.inserts: dict[str, list] = {}
        self.down = False

    def write(self, rows):
        if self.down:
            raise ConnectionError("storage is down")
        self.inserts.setdefault(rows.insert_token, rows.rows)  # ClickHouse drops a token it has seen


def test_a_waiting_call_survives_a_restart_and_is_stored_once(tmp_path):
    trace, storage = Trace(), Storage()
    held = HeldCalls(CallIndex(), str(tmp_path))
    assert held.before(map_request(trace.request(("chat", "step", CHAT, 0.1, 0.9)), PRICER).rows, [], "t1") == []
    held.after("t1")
    # restart: the call waits again; the exporter, whose answer was lost, sends it again
    held = HeldCalls(CallIndex(), str(tmp_path))
    assert held.index.held_rows == 1
    again = held.before(map_request(trace.request(("chat", "step", CHAT, 0.1, 0.9)), PRICER).rows, [], "t1b")
    assert again == [] and held.index.held_rows == 1
    held.after("t1b")
    # and its ancestor arrives
    result = map_request(trace.request(("step", "", STEP, 0.0, 1.0)), PRICER)
    assert held.before(result.rows, result.links, "t2") == []
    storage.down = True
    with pytest.raises(ConnectionError):
        held.settle(storage.write)
    # restart while the settle had not reached storage: it is completed, not redone
    held = HeldCalls(CallIndex(), str(tmp_path))
    assert held.index.held_rows == 0
    storage.down = False
    assert held.settle(storage.write) == 1 and held.settle(storage.write) == 0
    ((token, rows),) = storage.inserts.items()
    assert col(rows[0], "tenant_id") == "acme" and col(rows[0], "cost_total") == price(CHAT)
    assert os.listdir(tmp_path) == []


# -- through a real collector: the real OTel SDK exporting over gRPC, one request a span --


def _exporting(collector):
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": "agent-node"}))
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=collector.grpc_target, insecure=True)))
    return provider


def _wait_for(collector, sql: str, expected, timeout: float = 20.0):
    import time

    deadline = time.monotonic() + timeout
    while True:
        got = collector.query(sql)
        if got == expected or time.monotonic() > deadline:
            return got
        time.sleep(0.1)


@pytest.mark.parametrize("attributed", ["outer", "inner"], ids=["context-on-outer", "context-on-inner"])
@pytest.mark.parametrize("restart", [False, True], ids=["same-process", "collector-restarted"])
def test_a_call_and_its_outer_span_seconds_apart_are_counted_once(start_collector, restart, attributed):
    """OpenInference's LLM span around a semconv chat span of the same call, exported in two
    requests two seconds apart (and across a collector restart): one cost, in the raw rows and
    in the rollups, attributed from whichever span has the context (on the outer span, the
    call waits for it; on the inner one, it is stored at once and the outer pairs with it). A
    collector that stops stores the calls that wait as they are (a crash keeps them waiting:
    test_a_waiting_call_survives_a_restart_and_is_stored_once)."""
    import time

    from opentelemetry import trace as api

    running = start_collector()
    provider = _exporting(running)
    tracer = provider.get_tracer("tests")
    context = {"outer": ({**OPENINFERENCE, **STEP}, CHAT), "inner": (OPENINFERENCE, {**CHAT, **STEP})}
    outer = tracer.start_span("openai.chat", attributes=context[attributed][0])
    inner = tracer.start_span(
        "chat gpt-4o-mini", context=api.set_span_in_context(outer), attributes=context[attributed][1]
    )
    inner.end()  # request 1
    time.sleep(2)
    if restart:
        # waiting for the outer span, or stored; a collector that stops stores what waits
        assert _wait_for(running, "SELECT count() FROM {db}.genai_spans", [(1,)] if attributed == "inner" else [(0,)])
        port = running.collector.grpc_port
        running.stop()
        running = start_collector(grpc_port=port)  # the exporter reconnects
        assert running.query("SELECT count() FROM {db}.genai_spans") == [(1,)]
    outer.end()  # request 2
    provider.shutdown()
    expected = price(CHAT)
    outer_attribution = ("acme", "u_7", "support-bot") if attributed == "outer" else ("", "", "")
    # stored at the stop before its outer span arrived: no attribution to take
    inner_attribution = ("", "", "") if restart and attributed == "outer" else ("acme", "u_7", "support-bot")
    want = [
        ("counted_elsewhere", Decimal(0), *outer_attribution, f"{inner.context.span_id:016x}"),
        ("priced", expected, *inner_attribution, ""),
    ]
    rows = _wait_for(
        running,
        "SELECT pricing_status, cost_total, tenant_id, user_id, feature, counted_on "
        "FROM {db}.genai_spans ORDER BY pricing_status",
        want,
    )
    assert rows == want
    # An insert commits the raw part, then each view's: a reader may see the raw row first.
    hourly = [(inner_attribution[0], expected, 1)]
    assert (
        _wait_for(
            running,
            "SELECT tenant_id, sum(cost_total), sum(calls) FROM {db}.genai_costs_hourly GROUP BY tenant_id",
            hourly,
        )
        == hourly
    )
    running.stop()


@pytest.mark.parametrize("forced", [None, "globex"], ids=["open", "tenant-token"])
def test_a_span_without_usage_never_changes_the_attribution_of_the_rows_after_it(forced):
    """The mapping reads the attribution of spans without usage for otel_costs_collector.mapping.calls; it must not
    leak into the rows that follow them in the request, nor override a token's tenant."""
    trace = Trace()
    result = map_request(trace.request(("step", "", STEP, 0.0, 1.0), ("chat", "other", CHAT, 0.1, 0.9)), PRICER, forced)
    (row,) = result.rows
    assert (col(row, "tenant_id"), col(row, "user_id")) == (forced or "", "")
    assert [(link[LINK_TENANT], link[LINK_USER]) for link in result.links] == [(forced or "acme", "u_7")]


def test_a_suspected_double_count_is_shown_by_every_report(collector):
    """A costed span, then (another request) a call with another usage below it: the rules
    cannot pair them, so both count, and the metric, the notices API, the report command and
    the dashboard say so."""
    import json
    import subprocess
    import sys
    import urllib.request

    import grpc
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2_grpc import TraceServiceStub

    trace = Trace()
    with grpc.insecure_channel(collector.grpc_target) as channel:
        stub = TraceServiceStub(channel)
        now = (time_ns() - T0) / 1e9  # spans of the last seconds: in the reports' default range
        stub.Export(trace.request(("run", "", {**SUM, **STEP}, now - 1.0, now)), timeout=30)
        stub.Export(trace.request(("a", "run", {**CHAT, **STEP}, now - 0.9, now - 0.5)), timeout=30)
    want = [(2, price(SUM) + price(CHAT))]
    assert (
        _wait_for(
            collector,
            "SELECT count(), sum(cost_total) FROM {db}.genai_spans WHERE suspect_of IN ('', '" + hexid("run") + "')",
            want,
        )
        == want
    )
    assert (
        "otel_costs_calls_suspected_double 1.0"
        in urllib.request.urlopen(collector.http_url + "/metrics", timeout=10).read().decode()
    )
    notices = json.load(urllib.request.urlopen(collector.http_url + "/v1/notices?since=1d", timeout=10))
    assert notices == {"suspected_double_counts": 1, "example_trace_id": trace.trace_id.hex()}
    report = subprocess.run(
        [sys.executable, "-m", "otel_costs_collector.cli", "report", "--url", collector.http_url, "--by", "tenant"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert report.returncode == 0 and "acme" in report.stdout
    assert "1 call in this range was stored below another call" in report.stderr
    page = urllib.request.urlopen(collector.http_url + "/?since=1d", timeout=30).read().decode()
    assert 'data-testid="notice"' in page and trace.trace_id.hex() in page


def test_an_attribution_found_just_before_a_crash_is_kept(tmp_path):
    """The ancestor arrives (its request is acknowledged) and the collector dies before the
    call is stored: the ancestor will not be sent again, so the attribution it gave was
    journaled with the call."""
    trace, storage = Trace(), Storage()
    held = HeldCalls(CallIndex(), str(tmp_path))
    held.before(map_request(trace.request(("chat", "step", CHAT, 0.1, 0.9)), PRICER).rows, [], "t1")
    held.after("t1")
    result = map_request(trace.request(("step", "agent", STEP, 0.0, 1.0)), PRICER)
    assert held.before(result.rows, result.links, "t2") == []
    held.after("t2")
    held = HeldCalls(CallIndex(), str(tmp_path))  # killed before the settle; started again
    assert held.settle(storage.write) == 1
    ((_, rows),) = storage.inserts.items()
    assert (col(rows[0], "tenant_id"), col(rows[0], "user_id")) == ("acme", "u_7")


@pytest.mark.parametrize(
    ("spans", "untouched"),
    [
        ([("chat", "", {**CHAT, **STEP}, 0.1, 0.9)], True),  # stored as mapped: the worker's block is inserted
        ([("chat", "llm", {**CHAT, **STEP}, 0.1, 0.9), ("llm", "", OPENINFERENCE, 0.0, 1.0)], False),  # a pair
        ([("chat", "step", CHAT, 0.1, 0.9)], False),  # waits for an ancestor's attribution
    ],
    ids=["plain", "pair", "waits"],
)
def test_a_batch_the_rule_leaves_as_mapped_keeps_its_native_block(tmp_path, spans, untouched):
    request = Trace().request(*spans)
    result = map_request(request, PRICER)
    assert HeldCalls(CallIndex(), str(tmp_path)).judge(result.rows, result.links, "t1")[1] is untouched
    # the insert of t1 did not return: a replay applies the recorded changes, so it is not as mapped
    result = map_request(request, PRICER)
    assert HeldCalls(CallIndex(), str(tmp_path)).judge(result.rows, result.links, "t1")[1] is untouched
