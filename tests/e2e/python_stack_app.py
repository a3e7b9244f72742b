"""A Python app for tests/e2e/test_python_stacks.py, run in a process of its own:

    python -m tests.e2e.python_stack_app STACK PRICED_BY STREAM COLLECTOR OPENAI_URL ANTHROPIC_URL

STACK is the provider SDK and its instrumentations ("anthropic+openinference", "openai+openllmetry",
…); PRICED_BY "sdk" (CostSpanProcessor, and the httpx hooks as the README sets them up),
"sdk-spans" (CostSpanProcessor alone: priced from the instrumentations' spans) or "collector"
(a plain BatchSpanProcessor: the collector prices and pairs); STREAM "True" or
"False" (``messages.create``), or "helper": the anthropic SDK's ``messages.stream`` helper, each
call with no request span around it (every instrumentation's span the root of its trace). It
makes CALLS calls, each under the app's request span unless STREAM is "helper", and exports
over OTLP/gRPC.
"""

from __future__ import annotations

import sys

CALLS = 2
WHO = ("u_9", "acme", "assistant")  # user, tenant, feature
#: How the fake Anthropic API serves each call (tests/sdk/test_httpx_hooks.py LLMServer).
ANTHROPIC_SERVED = {"x-served-tier": "priority", "x-web-searches": "2"}


def instrumentors(stack: str) -> list:
    """The instrumentations of a stack, in the order an app installs them."""
    found = []
    for name in stack.split("+")[1:]:
        if stack.startswith("anthropic"):
            if name == "openllmetry":
                from opentelemetry.instrumentation.anthropic import AnthropicInstrumentor
            else:
                from openinference.instrumentation.anthropic import AnthropicInstrumentor
            found.append(AnthropicInstrumentor())
        elif name == "openllmetry":
            from opentelemetry.instrumentation.openai import OpenAIInstrumentor

            found.append(OpenAIInstrumentor())
        elif name == "openinference":
            from openinference.instrumentation.openai import OpenAIInstrumentor as OpenInferenceOpenAI

            found.append(OpenInferenceOpenAI())
        else:
            from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor as ContribOpenAI

            found.append(ContribOpenAI())
    return found


def main(stack: str, priced_by: str, stream: bool | str, endpoint: str, openai_url: str, anthropic_url: str) -> None:
    import anthropic
    import openai
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    from otel_costs import CostSpanProcessor, attribute_to, instrument_httpx
    from tests.sdk.test_anthropic_sdk import call

    provider = TracerProvider(resource=Resource.create({"service.name": "support-py"}))
    export = BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint, insecure=True))
    provider.add_span_processor(CostSpanProcessor(export) if priced_by.startswith("sdk") else export)
    for instrumentor in instrumentors(stack):
        instrumentor.instrument(tracer_provider=provider)
    if priced_by == "sdk":
        # As the README sets an app up: the HTTP span reads the response's whole usage
        # (openai-v2 leaves cached tokens out of its span; no instrumentation records
        # Anthropic's web searches) and carries the call's cost.
        instrument_httpx(openai_compatible=[openai_url], anthropic_compatible=[anthropic_url], tracer_provider=provider)
    tracer = provider.get_tracer("support-py")
    user, tenant, feature = WHO
    if stack.startswith("anthropic"):
        client = anthropic.Anthropic(
            base_url=anthropic_url,
            api_key="test",
            max_retries=0,
            open_telemetry={"tracer_provider": provider},
            default_headers=ANTHROPIC_SERVED,
        )
    else:
        client = openai.OpenAI(base_url=openai_url, api_key="test", max_retries=0)
    if stream == "helper":  # calls as roots, attributed by baggage alone
        for _ in range(CALLS):
            with attribute_to(user_id=user, tenant_id=tenant, feature=feature):
                kwargs = {
                    "model": "claude-haiku-4-5",
                    "max_tokens": 300,
                    "messages": [{"role": "user", "content": "hi"}],
                }
                with client.messages.stream(**kwargs) as events:
                    for _ in events.text_stream:
                        pass
        client.close()
        provider.shutdown()
        return
    for _ in range(CALLS):
        # The app's request span: CostSpanProcessor's baggage, or attributes an app without it
        # sets on its own span (the collector gives them to the calls below).
        with (
            attribute_to(user_id=user, tenant_id=tenant, feature=feature),
            tracer.start_as_current_span(
                "POST /assist",
                attributes={}
                if priced_by.startswith("sdk")
                else {"user.id": user, "tenant.id": tenant, "feature.name": feature},
            ),
        ):
            if stack.startswith("anthropic"):
                call(client, stream)
            elif stream:
                for _ in client.chat.completions.create(
                    model="gpt-4o-mini",
                    messages=[{"role": "user", "content": "hi"}],
                    stream=True,
                    stream_options={"include_usage": True},
                ):
                    pass
            else:
                client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    client.close()
    provider.shutdown()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], "helper" if sys.argv[3] == "helper" else sys.argv[3] == "True", *sys.argv[4:7])
