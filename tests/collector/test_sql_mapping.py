"""The mapping as ClickHouse SQL (collector/sql_mapping.py) against the reference, the
Python mapping: on arbitrary requests, the spans SQL maps give exactly Python's rows, the
others are classed for Python, and the counts and reject messages agree."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import KeyValue

from collector import batch_file, sql_mapping
from collector.batch_writer import select_spans
from collector.mapping import COLUMNS, map_request

from .spans import SEMCONV, any_value, build, sdk_request
from .test_properties import KEYS, PRICER, spans, values

COMPARED = [c for c in COLUMNS if c != "request_token"]  # SQL carries the record's token
RESOURCE_KEYS = ["service.name", "user.id", "tenant.id", "feature.name", "enduser.id", "otel_costs.tag.plan",
                 "otel_costs.tag.team", "traceloop.association.properties.x", "metadata"]
# Values that pass the SQL path's checks, so that hypothesis reaches it often.
plain = st.sampled_from(["acme", " padded ", "gpt-4o-mini", "openai", "anthropic", "chat", "", "priced", "unpriced",
                         "0.001", "0", "0.000123456789012345678", "1e-3", "counted_elsewhere", "x" * 300])
sdk_values = st.one_of(values, plain, st.integers(min_value=0, max_value=2000))
sdk_spans = st.lists(st.tuples(
    st.dictionaries(st.sampled_from(KEYS + ["otel_costs.cost.output", "otel_costs.cost.cache_read",
                                            "gen_ai.usage.cache_read.input_tokens", "otel_costs.tag.team"]),
                    sdk_values, max_size=14),
    st.sampled_from([16, 16, 16, 0]), st.sampled_from([8, 8, 8, 5]),
    st.integers(min_value=0, max_value=2**64 - 1), st.integers(min_value=0, max_value=2**64 - 1),
), min_size=1, max_size=6)
requests = st.lists(st.tuples(
    st.one_of(spans, sdk_spans),
    st.dictionaries(st.sampled_from(RESOURCE_KEYS), st.one_of(values, plain), max_size=4),
    st.one_of(st.none(), st.sampled_from(["acme", "beta"])),
), min_size=1, max_size=3)


def run_sql(collector, path: str) -> list[dict]:
    columns = ", ".join(["request_no", "rs_i", "ss_i", "sp_i", "class", "message",
                         "toUnixTimestamp64Nano(timestamp) AS timestamp", *COMPARED[1:]])
    result = collector.collector.client.query(f"SELECT {columns} FROM ({sql_mapping.mapping_query()})",
                                              parameters={"batch": path}, settings=sql_mapping.SETTINGS)
    return list(result.named_results())


def key(row) -> tuple:
    return tuple(sorted(row["tags"].items()) if c == "tags" else row[c] for c in COMPARED)


def check(collector, tmp_path, requests_and_tenants) -> dict[str, int]:
    path = str(tmp_path / "batch.bin")
    with open(path, "wb") as f:
        f.write(batch_file.encode([batch_file.Record(r.SerializeToString(), tenant, f"token{i}")
                                   for i, (r, tenant) in enumerate(requests_and_tenants)]))
    sql_rows = run_sql(collector, path)
    classes: dict[str, int] = {}
    for no, (request, tenant) in enumerate(requests_and_tenants, 1):
        mine = [r for r in sql_rows if r["request_no"] == no]
        for r in mine:
            classes[r["class"]] = classes.get(r["class"], 0) + 1
        expected = map_request(request, PRICER, tenant)
        python = map_request(select_spans(request, {(r["rs_i"], r["ss_i"], r["sp_i"]) for r in mine if r["class"] == "python"}),
                             PRICER, tenant)
        assert len(mine) == expected.received
        assert expected.non_genai == python.non_genai + sum(r["class"] == "non_genai" for r in mine)
        assert expected.rejected == python.rejected + sum(r["class"] == "reject" for r in mine)
        if expected.rejected <= 5:
            assert sorted(expected.errors) == sorted(python.errors + [r["message"] for r in mine if r["class"] == "reject"])
        want = sorted(key(dict(zip(COLUMNS, row))) for row in zip(*expected.rows.data))
        got = sorted([key(r) for r in mine if r["class"] == "row"]
                     + [key(dict(zip(COLUMNS, row))) for row in zip(*python.rows.data)])
        assert got == want
    return classes


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(requests)
# Found by hypothesis: a duration over 2^63 ns (UInt64 minus UInt64 is Int64 in ClickHouse).
@example([([({}, 16, 8, 0, 0), ({"ai.usage.inputTokens": 0, "ai.usage.outputTokens": 0,
                                  "otel_costs.pricing.status": "priced"}, 16, 8, 1, 2**63 + 1)], {}, None)])
def test_sql_mapping_agrees_with_the_python_mapping(collector, tmp_path, specs):
    check(collector, tmp_path, [(build(s, res), tenant) for s, res, tenant in specs])


# SDK-priced spans with attribution and tags: the SQL path's spans, to repeat keys of.
PRICED = sdk_request([dict(SEMCONV, **{"gen_ai.request.model": model, "user.id": "u1", "tenant.id": "acme",
                                        "otel_costs.tag.team": "search"})
                      for model in ("gpt-4o-mini", "claude-sonnet-4-5")])
PRICED.resource_spans[0].resource.attributes.add(key="enduser.id", value=any_value("u0"))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_repeated_attribute_keys_agree(collector, tmp_path, data):
    # OTLP forbids a key twice in one attribute list, yet senders do it: mapping.py's dict
    # keeps the last value, so SQL (which reads the first) must leave such spans to Python
    # when the repeated name is one the mapping reads, and may map them when it is not.
    request = ExportTraceServiceRequest()
    request.CopyFrom(PRICED)
    rs = request.resource_spans[0]
    for holder in [rs.resource, *rs.scope_spans[0].spans]:
        keys = [kv.key for kv in holder.attributes] + ["some.other.key"]
        extra = data.draw(st.lists(st.tuples(st.sampled_from(keys), sdk_values), max_size=2))
        holder.attributes.extend(KeyValue(key=k, value=any_value(v)) for k, v in extra)
    check(collector, tmp_path, [(request, None)])


def test_sdk_priced_spans_take_the_sql_path(collector, tmp_path):
    # Without this, classing every span "python" would pass the comparison above.
    attrs = [dict(SEMCONV, **{"gen_ai.request.model": m}) for m in ("gpt-4o-mini", "gpt-4o", "claude-sonnet-4-5")]
    classes = check(collector, tmp_path, [(sdk_request([dict(a) for a in attrs]), None),
                                          (sdk_request([dict(a) for a in attrs], priced=False), "acme")])
    assert classes == {"row": 3, "python": 3}


@pytest.fixture
def collector(collector):
    """Embedded only: ClickHouse's file() reads the collector's own disk."""
    if collector.collector.config.target.kind != "chdb":
        pytest.skip("the SQL mapping reads batch files from the collector's disk: embedded storage only")
    return collector
