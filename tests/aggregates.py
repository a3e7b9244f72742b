"""Span shapes of one provider call under an aggregate, as real instrumentations make them
(REFERENCES.md): the outer span carries usage too — the sum of its calls — and must never be
billed. Shared by the SDK and collector tests."""

from __future__ import annotations

USAGE_SEMCONV = {"gen_ai.usage.input_tokens": 1800, "gen_ai.usage.output_tokens": 120}
USAGE_VERCEL = {"ai.usage.inputTokens": 1800, "ai.usage.outputTokens": 120}
CALL_MODEL = {"gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o-mini"}

#: name → (outer span's attributes, inner (the call's) span's attributes)
SHAPES = {
    "vercel-ai-6": (
        {
            "ai.operationId": "ai.generateText",
            **USAGE_VERCEL,
            "ai.model.provider": "openai.chat",
            "ai.model.id": "gpt-4o-mini",
        },
        {
            "ai.operationId": "ai.generateText.doGenerate",
            **USAGE_VERCEL,
            "ai.model.provider": "openai.chat",
            "ai.model.id": "gpt-4o-mini",
            "gen_ai.system": "openai.chat",
            "gen_ai.request.model": "gpt-4o-mini",
        },
    ),
    "vercel-ai-7-semconv": (
        {"gen_ai.operation.name": "invoke_agent", **USAGE_SEMCONV, **CALL_MODEL, "gen_ai.agent.name": "support"},
        {"gen_ai.operation.name": "chat", **USAGE_SEMCONV, **CALL_MODEL},
    ),
    # semantic-conventions-genai 0.1: a workflow is an invoke_agent internal span whose
    # operation stays invoke_workflow
    "semconv-workflow": (
        {"gen_ai.operation.name": "invoke_workflow", **USAGE_SEMCONV, **CALL_MODEL, "gen_ai.agent.name": "triage"},
        {"gen_ai.operation.name": "chat", **USAGE_SEMCONV, **CALL_MODEL},
    ),
    "semconv-plan": (
        {"gen_ai.operation.name": "plan", **USAGE_SEMCONV, **CALL_MODEL},
        {"gen_ai.operation.name": "chat", **USAGE_SEMCONV, **CALL_MODEL},
    ),
    "openinference-agent": (
        {
            "openinference.span.kind": "AGENT",
            "llm.token_count.prompt": 1800,
            "llm.token_count.completion": 120,
            "llm.model_name": "gpt-4o-mini",
            "llm.provider": "openai",
        },
        {
            "openinference.span.kind": "LLM",
            "llm.token_count.prompt": 1800,
            "llm.token_count.completion": 120,
            "llm.model_name": "gpt-4o-mini",
            "llm.provider": "openai",
        },
    ),
    "openllmetry-workflow": (
        {
            "traceloop.span.kind": "workflow",
            "gen_ai.usage.input_tokens": 1800,
            "gen_ai.usage.output_tokens": 120,
            "llm.usage.total_tokens": 1920,
            **CALL_MODEL,
        },
        {
            "llm.request.type": "chat",
            "gen_ai.usage.input_tokens": 1800,
            "gen_ai.usage.output_tokens": 120,
            "llm.usage.total_tokens": 1920,
            **CALL_MODEL,
        },
    ),
}
