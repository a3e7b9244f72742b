"""The span → row mapping as ClickHouse SQL, generated from the SDK's convention tables.

:mod:`collector.mapping` is the reference; this is the same mapping for ClickHouse to run
over a batch file (``queries/map_batch.sql``), so an embedded collector keeps Python off
the per-span path. It covers the common case exactly — spans an otel-costs SDK priced,
with well-formed counts, costs and attribution — and classes every other span
``python``, for mapping.py to map: spans to price here (other languages), unreadable
usage, malformed costs, a name it reads given twice, strings outside printable ASCII where
mapping.py strips or checks them (models, attribution, tags), OpenLLMetry
association properties, OpenInference metadata, more than the tag limit. So the two can
never disagree: tests compare both on arbitrary requests. ClickHouse plans this query anew
per batch (~0.1 s), so it pays only on large batches: collector/batch_writer.py runs it
(bench/sql_mapping.py, bench/collector_ingest.py).

Pure: builds text, no I/O. The query needs ``input_format_protobuf_oneof_presence`` (see
:data:`SETTINGS`) to tell an attribute's kind, as mapping.py does.
"""

from __future__ import annotations

import functools
from importlib import resources
from string import Template

from otel_costs import conventions as cv
from otel_costs.attribution import MAX_TAGS, MAX_VALUE_LENGTH
from otel_costs.pricing import PricingStatus

from .mapping import READ_NAMES, RESOURCE_READ_NAMES
from .queries import load

__all__ = ["SCHEMA_FILE", "STRUCTURE", "mapping_query", "SETTINGS", "settings_clause"]

#: The batch-file schema ClickHouse reads (packaged next to this module).
SCHEMA_FILE = str(resources.files("collector").joinpath("otlp_batch.proto"))
# Which AnyValue field is set (input_format_protobuf_oneof_presence): its field number,
# 0 when none: 1 string, 2 bool, 3 int, 4 double, 5-7 array, kvlist, bytes.
_KIND = "UInt8"
_KV = (f"Array(Tuple(key String, value Tuple(value {_KIND}, string_value String, bool_value Bool, "
       "int_value Int64, double_value Float64)))")
#: The columns ClickHouse reads from each record of a batch file.
STRUCTURE = (
    f"resource_spans Array(Tuple(resource Tuple(attributes {_KV}), scope_spans Array(Tuple(spans Array(Tuple("
    f"trace_id String, span_id String, parent_span_id String, name String, start_time_unix_nano UInt64, "
    f"end_time_unix_nano UInt64, attributes {_KV}, status Tuple(message String, code Int32))))))), "
    "otel_costs_request_no UInt32, otel_costs_tenant String, otel_costs_tenant_forced Bool, otel_costs_token String"
)
SETTINGS = {
    "format_schema": f"{SCHEMA_FILE}:Request",
    "input_format_protobuf_oneof_presence": 1,
    # Lazy multiIf branches filter every column their expression reads: 4x slower here.
    # So every branch runs on every row: conversions must not throw on the rows they skip.
    "short_circuit_function_evaluation": "disable",
    # The AND/OR chain optimiser took 1 s of this query's 1.5 s of planning.
    "optimize_and_compare_chain": 0,
    # Plan optimisations (filter push-down, reading in order, …) find nothing to do in a
    # scan of one file into a table, yet cost ~50 ms of this query's ~300 ms of planning.
    "query_plan_enable_optimizations": 0,
    # One thread: the receivers (Python) need the other core of a small machine, and one
    # batch file is one read stream anyway.
    "max_threads": 1,
}
_TAG_PREFIX = "otel_costs.tag."
assert cv.TAG_PREFIXES[0] == _TAG_PREFIX  # the one prefix mapped here; the others go to Python
_OTHER_PREFIXES = cv.TAG_PREFIXES[1:]
_PLAIN = "'^[ -~]*$'"  # printable ASCII: Python's strip/isprintable/lower agree with SQL's
# Plain decimals whose sums Python's 28-digit Decimal context computes exactly.
_PLAIN_DECIMAL = r"'^[0-9]{1,9}(\\.[0-9]{1,18})?$'"
_INT64_MAX = 2**63 - 1


def _lit(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def settings_clause(settings: dict[str, int | str]) -> str:
    """``SETTINGS name = value, …`` for a statement (integers bare, strings quoted)."""
    return "SETTINGS " + ", ".join(f"{name} = {value if isinstance(value, int) else _lit(str(value))}"
                                   for name, value in settings.items())


def _array(names) -> str:
    return "[" + ", ".join(_lit(n) for n in sorted(names)) + "]"


def _clean(v: str) -> str:
    """mapping._clean of AnyValue tuple ``v`` (printable ASCII or int): the text, or ''."""
    text = (f"multiIf({v}.value = 1, trimBoth({v}.string_value), "
            f"{v}.value = 3, toString({v}.int_value), '')")
    return f"if(length({text}) BETWEEN 1 AND {MAX_VALUE_LENGTH}, {text}, '')"


def _not_plain(v: str) -> str:
    return f"({v}.value = 1 AND NOT match({v}.string_value, {_PLAIN}))"


class _Names:
    """Attributes read by one fixed name (costs, pricing, service, error): each name's
    position is found once (``indexOf`` of its id) and its AnyValue extracted into a column
    (kind 0 when absent)."""

    def __init__(self, prefix: str, vals: str, ids: str, id_of: dict[str, int]) -> None:
        self.prefix, self.vals, self.ids, self.id_of = prefix, vals, ids, id_of
        self.columns: dict[str, str] = {}

    def __call__(self, name: str) -> str:
        if name not in self.columns:
            self.columns[name] = f"{self.prefix}{len(self.columns)}"
        return self.columns[name]

    def positions(self) -> dict[str, str]:
        return {f"i_{col}": f"indexOf({self.ids}, {self.id_of[name]})" for name, col in self.columns.items()}

    def values(self) -> dict[str, str]:
        return {col: f"{self.vals}[indexOf({self.ids}, {self.id_of[name]})]" for name, col in self.columns.items()}


def _levels() -> list[dict[str, str]]:
    """The mapping as levels of columns, each a SELECT over the previous one's columns.

    ClickHouse's analyzer copies an alias's whole expression into every place that names
    it, so large expressions (lookup tables, lambdas over the attributes) named by later
    ones are columns of an inner SELECT; the small last level is aliases of one SELECT.
    bench/sql_mapping.py --requests 48 (24k spans), side by side with the previous form
    (one SELECT of aliases, a lambda over the attributes a field): planning 180 against
    260-300 ms, 47-57k against 34-40k spans/s mapped; these levels as aliases of one
    SELECT ~320 ms."""
    convs = cv.CONVENTIONS
    fields = ("input", "output", "cache_read", "cache_write", "reasoning")
    texts = ("provider", "request_model", "response_model", "operation")
    aliases = list(dict.fromkeys(n for names in cv.ATTRIBUTION_ALIASES.values() for n in names))
    stripped = list(dict.fromkeys(n for c in convs for f in texts for n in getattr(c, f)))
    # Every attribute name mapping.py reads gets an id (0: any other name), so keys are
    # compared as strings once a span (``ids``, ``rids``) and every later test is on ids.
    span_names, resource_names = sorted(READ_NAMES), sorted(RESOURCE_READ_NAMES)
    names = sorted(READ_NAMES | RESOURCE_READ_NAMES)
    id_of = {n: i for i, n in enumerate(names, 1)}
    fixed, res = _Names("x", "vals", "ids", id_of), _Names("y", "rvals", "rids", id_of)
    zero: dict[str, str] = {}
    one: dict[str, str] = {}
    two: dict[str, str] = {}
    three: dict[str, str] = {}
    four: dict[str, str] = {}
    for column, keys, read in (("ids", "keys", span_names), ("rids", "rkeys", resource_names)):
        zero[column] = (f"arrayMap(k -> transform(k, {_array(read)}, "
                        f"CAST({[id_of[n] for n in read]}, 'Array(UInt16)'), 0), {keys})")
    # The span's convention: the first whose identifying names are present (0: none).
    detect = {n: len(convs) - i for i, c in reversed(list(enumerate(convs))) for n in c.detect_names()}
    rank = [0] + [detect.get(n, 0) for n in names]  # by id + 1
    one["conv"] = (f"({len(convs) + 1} - arrayMax(arrayMap(j -> CAST({rank}, 'Array(UInt8)')[j + 1], ids))) "
                   f"% {len(convs) + 1}")
    one["genai"] = f"hasAny(ids, CAST({sorted(id_of[n] for n in cv.USAGE_ATTRIBUTE_NAMES)}, 'Array(UInt16)'))"
    # Unusual: a name mapping.py reads given twice (its dict keeps the last value, SQL reads
    # the first), metadata JSON, another tag prefix. No read name repeats exactly when the
    # distinct non-zero ids plus the zeros (unread names, free to repeat) are all the keys.
    others = " OR ".join(f"startsWith(k, {_lit(p)})" for p in _OTHER_PREFIXES)
    meta = id_of[cv.METADATA_JSON]
    one["unusual"] = " OR ".join(
        f"arrayUniq({j}) - has({j}, 0) + countEqual({j}, 0) != length({j}) OR has({j}, {meta}) "
        f"OR arrayExists(k -> {others}, {k})" for j, k in (("ids", "keys"), ("rids", "rkeys")))

    # Per attribute: its count and whether it is unreadable as one (conventions.read_usage),
    # its stripped string, its clean attribution value (mapping._clean).
    ok_double = ("(v.value = 4 AND isFinite(v.double_value) AND v.double_value >= 0 "
                 f"AND v.double_value <= {cv.MAX_TOKENS} AND v.double_value = floor(v.double_value))")
    ok_int = f"(v.value = 3 AND v.int_value BETWEEN 0 AND {cv.MAX_TOKENS})"
    one["nums"] = f"arrayMap(v -> if(v.value = 3, v.int_value, toInt64(if({ok_double}, v.double_value, 0))), vals)"
    one["bads"] = f"arrayMap(v -> NOT ({ok_int} OR {ok_double}), vals)"
    one["strs"] = "arrayMap(v -> if(v.value = 1, trimBoth(v.string_value), ''), vals)"
    one["kinds"] = "arrayMap(v -> v.value, vals)"
    one["cleans"] = f"arrayMap(v -> {_clean('v')}, vals)"
    one["rcleans"] = f"arrayMap(v -> {_clean('v')}, rvals)"
    # Each candidate name's position among the span's attributes (q<id>) and, for the
    # aliases, the resource's (rq<id>); 0 when absent. Computed once for every field that
    # names it, so a field is plain expressions rather than a lambda over the attributes.
    candidates = {n for c in convs for f in fields + texts for n in getattr(c, f)} | set(aliases)
    one.update({f"q{id_of[n]}": f"indexOf(ids, {id_of[n]})" for n in sorted(candidates)})
    one.update({f"rq{id_of[n]}": f"indexOf(rids, {id_of[n]})" for n in aliases})

    def first(prefix: str, candidates, values: str, empty: str) -> str:
        """The position of the first candidate present with a value other than ``empty``
        (a name's first position: spans that repeat a name it reads go to Python)."""
        out = "0"
        for name in reversed(candidates):
            column = f"{prefix}{id_of[name]}"
            out = f"if({values}[{column}] != {empty}, {column}, {out})"
        return out

    def by_convention(field: str, values: str, empty: str) -> str:
        branches = ", ".join(f"conv = {i}, {first('q', getattr(c, field), values, empty)}"
                             for i, c in enumerate(convs, 1))
        return f"multiIf({branches}, 0)"
    # One regex over every string mapping.py would strip or check: printable ASCII only.
    strict = [0] + [int(n in stripped or n in aliases) for n in names]
    one["not_plain"] = (f"arrayExists((j, v) -> {strict}[j + 1] = 1 AND v.value = 1 AND NOT match(v.string_value, {_PLAIN}), "
                        f"ids, vals) OR arrayExists((j, v) -> j != 0 AND v.value = 1 AND NOT match(v.string_value, {_PLAIN}), "
                        "rids, rvals)")

    # Usage and model fields: the first present name of the span's convention.
    for field in fields:
        two[f"p_{field}"] = by_convention(field, "kinds", "0")
        three[f"{field}_n"] = f"nums[p_{field}]"
        three[f"{field}_bad"] = f"bads[p_{field}]"
    for field in texts:
        two[f"p_{field}"] = by_convention(field, "strs", "''")
        three[field] = f"strs[p_{field}]"
    modes = [{cv.InputCache.INCLUSIVE: 0, cv.InputCache.EXCLUSIVE: 1, cv.InputCache.BY_PROVIDER: 2}[c.input_cache]
             for c in convs]
    four["exclusive"] = (f"multiIf({modes}[conv] = 1, 1, {modes}[conv] = 2, "
                         f"has({_array(cv._EXCLUSIVE_PROVIDERS)}, splitByChar('.', lower(provider))[1]), 0)")
    four["output_tokens"] = "if(reasoning_n > output_n, output_n + reasoning_n, output_n)"
    four["cache_read_tokens"], four["cache_write_tokens"] = "cache_read_n", "cache_write_n"
    four["reasoning_tokens"] = "reasoning_n"
    five = {"input_tokens": ("if(exclusive OR cache_read_n + cache_write_n > input_n, "
                             "input_n + cache_read_n + cache_write_n, input_n)")}
    six = {"usage_bad": ("input_bad OR output_bad OR cache_read_bad OR cache_write_bad OR reasoning_bad "
                         f"OR input_tokens > {cv.MAX_TOKENS}")}

    # Attribution: the first clean alias, span before resource.
    for field, alias_names in cv.ATTRIBUTION_ALIASES.items():
        two[f"p_{field}"] = first("q", alias_names, "cleans", "''")
        two[f"rp_{field}"] = first("rq", alias_names, "rcleans", "''")
        three[field] = f"if(p_{field} != 0, cleans[p_{field}], rcleans[rp_{field}])"

    # Free tags from otel_costs.tag.*, resource then span (span wins).
    skip = len(_TAG_PREFIX) + 1
    starts = f"startsWith(k, {_lit(_TAG_PREFIX)})"
    keep = "n != '' AND lengthUTF8(n) <= 64 AND n NOT IN ('user_id', 'tenant_id', 'feature') AND c != ''"
    for p, keys, vals in (("s", "keys", "vals"), ("r", "rkeys", "rvals")):
        zero[f"{p}tk"] = f"arrayMap(k -> substring(k, {skip}), arrayFilter(k -> {starts}, {keys}))"
        zero[f"{p}tv"] = f"arrayFilter((v, k) -> {starts}, {vals}, {keys})"
        two[f"{p}tc"] = f"arrayMap(v -> {_clean('v')}, {p}tv)"
        two[f"{p}tbad"] = f"arrayExists(v -> {_not_plain('v')}, {p}tv) OR arrayUniq({p}tk) != length({p}tk)"
        three[f"{p}tags"] = (f"mapFromArrays(arrayFilter((n, c) -> {keep}, {p}tk, {p}tc), "
                             f"arrayFilter((c, n) -> {keep}, {p}tc, {p}tk))")
    four["tags"] = "mapUpdate(rtags, stags)"

    # The SDK's price: exact decimal strings that add up.
    status = fixed(cv.PRICING_STATUS)
    two["status"] = f"if({status}.value = 1, {status}.string_value, '')"
    three["priced"] = f"status IN ('{PricingStatus.PRICED.value}', '{PricingStatus.OVERRIDDEN.value}')"
    costs = {"cost_input": cv.COST_INPUT, "cost_output": cv.COST_OUTPUT, "cost_cache_read": cv.COST_CACHE_READ,
             "cost_cache_write": cv.COST_CACHE_WRITE, "cost_total": cv.COST_TOTAL}
    bads = []
    for column, name in costs.items():
        x = fixed(name)
        two[f"d_{x}"] = f"toDecimal128OrZero({x}.string_value, 18)"  # '' when absent: 0
        bads.append(f"(i_{x} > 0 AND NOT ({x}.value = 1 AND match({x}.string_value, {_PLAIN_DECIMAL})))")
        four[column] = f"if(priced, d_{x}, toDecimal128(0, 18))"
    two["cost_bad"] = " OR ".join(bads)
    parts = " + ".join(f"d_{fixed(costs[c])}" for c in ("cost_input", "cost_output", "cost_cache_read", "cost_cache_write"))
    three["cost_sum_bad"] = f"{parts} != d_{fixed(cv.COST_TOTAL)}"
    for column, name in (("pricing_source", cv.PRICING_SOURCE), ("pricing_model", cv.PRICING_MODEL),
                         ("pricing_error", cv.PRICING_ERROR)):
        x = fixed(name)
        two[column] = f"if({x}.value = 1, {x}.string_value, '')"
    y = res("service.name")
    two["service_name"] = f"if({y}.value = 1, {y}.string_value, '')"
    x = fixed("error.type")
    two["error_type"] = (f"if({x}.value = 1, {x}.string_value, "
                         "if(span.status.code = 2, span.status.message, ''))")

    seven = {
        "python_first": "unusual OR not_plain OR stbad OR rtbad",
        "non_genai": f"NOT genai OR status = '{PricingStatus.COUNTED_ELSEWHERE.value}'",
        "python_rest": (f"NOT has({_sdk_statuses()}, status) OR usage_bad OR (priced AND (cost_bad OR cost_sum_bad)) "
                        f"OR length(tags) > {MAX_TAGS} OR span.start_time_unix_nano > {_INT64_MAX}"),
    }
    one.update({**fixed.positions(), **res.positions(), **fixed.values(), **res.values()})
    # A span name read here but not by mapping.py would have no id (never found).
    assert candidates | set(detect) | set(fixed.columns) <= READ_NAMES
    assert set(res.columns) <= RESOURCE_READ_NAMES
    return [zero, one, two, three | four | five | six | seven]


@functools.cache
def mapping_query() -> str:
    """The SELECT over a batch file (bind ``batch``: the file's path). Run with :data:`SETTINGS`."""
    body = Template(load("read_batch")).substitute(structure=STRUCTURE.replace("\\", "\\\\").replace("'", "\\'"))
    for level in _levels():
        columns = ",\n    ".join(f"{e} AS {n}" for n, e in level.items())
        body = f"SELECT *,\n    {columns}\nFROM (\n{body}\n)"
    return Template(load("map_batch")).substitute(levels=body)


def _sdk_statuses() -> str:
    return _array(frozenset(s.value for s in PricingStatus if s is not PricingStatus.COUNTED_ELSEWHERE))
