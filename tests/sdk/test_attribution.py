"""attribute_to: context manager, decorator, start/end; nesting; validation; concurrency."""

from __future__ import annotations

import asyncio
import contextvars
from concurrent.futures import ThreadPoolExecutor

import pytest
from opentelemetry import baggage, context

from otel_costs import Attribution, attribute_to, current_attribution
from otel_costs.attribution import MAX_TAGS, MAX_VALUE_LENGTH, attribution_from_baggage

ATTRS = ("user.id", "tenant.id", "feature.name")


def test_context_manager_sets_and_restores():
    assert current_attribution() == {}
    with attribute_to(user_id="u1", tenant_id="acme", feature="chat", plan="pro"):
        assert current_attribution() == {
            "user.id": "u1",
            "tenant.id": "acme",
            "feature.name": "chat",
            "otel_costs.tag.plan": "pro",
        }
    assert current_attribution() == {}


def test_nested_scopes_override_field_by_field_and_restore():
    with attribute_to(user_id="u1", tenant_id="acme", feature="chat", plan="free"):
        with attribute_to(feature="summarize", plan="pro"):
            assert current_attribution() == {
                "user.id": "u1",
                "tenant.id": "acme",
                "feature.name": "summarize",
                "otel_costs.tag.plan": "pro",
            }
        assert current_attribution()["feature.name"] == "chat"
        assert current_attribution()["otel_costs.tag.plan"] == "free"


def test_int_ids_are_written_as_strings():
    with attribute_to(user_id=123, tenant_id=7):
        assert current_attribution() == {"user.id": "123", "tenant.id": "7"}


def test_sync_decorator_scopes_each_call():
    @attribute_to(feature="report")
    def work():
        return current_attribution()

    assert work() == {"feature.name": "report"}
    assert current_attribution() == {}


def test_async_decorator_and_concurrent_tasks_do_not_leak():
    seen: dict[str, dict] = {}

    @attribute_to(feature="chat")
    async def handle(user: str) -> None:
        with attribute_to(user_id=user):
            await asyncio.sleep(0.01)  # interleave the tasks
            seen[user] = current_attribution()

    async def main():
        await asyncio.gather(*(handle(f"u{i}") for i in range(20)))

    asyncio.run(main())
    assert seen == {f"u{i}": {"feature.name": "chat", "user.id": f"u{i}"} for i in range(20)}
    assert current_attribution() == {}


def test_thread_pool_with_context_handed_over():
    with attribute_to(tenant_id="acme"):
        with ThreadPoolExecutor(4) as pool:
            handed = [pool.submit(contextvars.copy_context().run, current_attribution) for _ in range(8)]
            bare = pool.submit(current_attribution)
            results = [f.result() for f in handed]
    assert results == [{"tenant.id": "acme"}] * 8
    assert bare.result() == {}  # a plain submit does not carry the context: documented


def test_start_end_form_for_middleware():
    scope = attribute_to(user_id="u9", feature="agent")
    assert isinstance(scope, Attribution)
    scope.start()
    try:
        assert current_attribution() == {"user.id": "u9", "feature.name": "agent"}
    finally:
        scope.end()
    assert current_attribution() == {}
    with pytest.raises(RuntimeError, match="without a matching start"):
        scope.end()


def test_same_scope_object_reentered_nests():
    scope = attribute_to(feature="chat")
    with scope:
        with attribute_to(feature="other"):
            with scope:
                assert current_attribution() == {"feature.name": "chat"}
            assert current_attribution() == {"feature.name": "other"}
    assert current_attribution() == {}


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"user_id": ""}, "must not be empty"),
        ({"user_id": "   "}, "must not be empty"),
        ({"user_id": 1.5}, "must be a str or int"),
        ({"user_id": True}, "must be a str or int"),
        ({"tenant_id": ["a"]}, "must be a str or int"),
        ({"feature": "x" * (MAX_VALUE_LENGTH + 1)}, "the limit is"),
        ({"feature": "line\nbreak"}, "control characters"),
        ({"plan": {"nested": 1}}, "must be a str or int"),
        ({"bad key!": "v"}, "tag name"),
        ({"_under": "v"}, "tag name"),
    ],
)
def test_invalid_values_are_refused_at_the_call_site(kwargs, message):
    with pytest.raises(ValueError, match=message):
        attribute_to(**kwargs)
    assert current_attribution() == {}


def test_too_many_tags_counts_nested_scopes():
    outer = {f"t{i}": "v" for i in range(MAX_TAGS)}
    with attribute_to(**outer):
        with pytest.raises(ValueError, match="tags in scope"):
            with attribute_to(extra="v"):
                pass  # pragma: no cover
        assert len(current_attribution()) == MAX_TAGS
    with pytest.raises(ValueError):
        attribute_to(**{f"t{i}": "v" for i in range(MAX_TAGS + 1)}).start()


def test_untrusted_baggage_is_filtered():
    entries = {
        "user.id": "u1",
        "tenant.id": "x" * (MAX_VALUE_LENGTH + 1),  # oversized: dropped
        "feature.name": "\x00evil",  # control character: dropped
        "otel_costs.tag.plan": "pro",
        "otel_costs.tag.bad key": "v",  # invalid tag name: dropped
        "unrelated": "kept out",
    }
    assert attribution_from_baggage(entries) == {"user.id": "u1", "otel_costs.tag.plan": "pro"}


def test_untrusted_baggage_tag_count_is_capped():
    entries = {f"otel_costs.tag.t{i}": "v" for i in range(MAX_TAGS + 5)}
    assert len(attribution_from_baggage(entries)) == MAX_TAGS


def test_baggage_set_by_others_is_left_alone():
    token = context.attach(baggage.set_baggage("session", "s1"))
    try:
        with attribute_to(user_id="u1"):
            assert baggage.get_baggage("session") == "s1"
        assert baggage.get_all() == {"session": "s1"}
    finally:
        context.detach(token)
