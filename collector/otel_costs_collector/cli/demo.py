"""``otel-costs demo``: realistic attributed LLM traffic through the real SDK and OTLP.

Several tenants on free and paid plans, their users, four features, models from three
providers with cached tokens, some failed calls and one self-hosted model with no price,
spread over the past days with explicit timestamps so every report has shape.
"""

from __future__ import annotations

import json
import os
import random
import time
from dataclasses import dataclass
from datetime import datetime, timezone

__all__ = ["DemoNote", "send_demo_traffic", "mark_demo", "earlier_demo"]

#: Left in the data directory by a demo run, so the next run does not send its traffic again.
_NOTE_FILE = ".otel-costs-demo.json"


@dataclass(frozen=True)
class DemoNote:
    calls: int
    days: int
    sent_at: datetime  # aware, UTC


def mark_demo(data_dir: str, calls: int, days: int) -> None:
    """Record, before sending, that the demo's traffic goes into ``data_dir``: a run that
    stops half-way is still not sent again on top."""
    with open(os.path.join(data_dir, _NOTE_FILE), "w", encoding="utf-8") as f:
        json.dump({"calls": calls, "days": days, "sent_at": datetime.now(timezone.utc).isoformat()}, f)


def earlier_demo(data_dir: str) -> DemoNote | None:
    """What an earlier demo run sent into ``data_dir``, or None."""
    try:
        with open(os.path.join(data_dir, _NOTE_FILE), encoding="utf-8") as f:
            doc = json.load(f)
        return DemoNote(int(doc["calls"]), int(doc["days"]), datetime.fromisoformat(doc["sent_at"]))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError):  # damaged: say it was sent, never double
        return DemoNote(0, 0, datetime.now(timezone.utc))


RELEASES = ("1.4.1", "1.5.0")
TENANTS = {"acme": "pro", "globex": "free", "initech": "enterprise", "umbrella": "free", "hooli": "pro"}
FEATURES = {"chat": 0.45, "summarize": 0.25, "search": 0.2, "agent": 0.1}
MODELS = [
    ("openai", "gpt-4o-mini", 0.35),
    ("openai", "gpt-4o", 0.15),
    ("anthropic", "claude-sonnet-4-5", 0.2),
    ("anthropic", "claude-3-5-haiku-latest", 0.15),
    ("gcp.gemini", "gemini-2.5-flash", 0.14),
    ("self-hosted", "acme-llama-ft", 0.01),
]


def send_demo_traffic(endpoint: str, calls: int = 2000, days: int = 14, seed: int = 7) -> None:
    """Send ``calls`` GenAI spans over OTLP/gRPC to ``endpoint`` (host:port), spread over
    the last ``days`` days. Blocks until they are exported."""
    os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"] = f"http://{endpoint}"
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider

    from otel_costs import CostSpanProcessor, attribute_to, record_usage

    rng = random.Random(seed)
    providers = {}
    for service in ("chat-api", "worker"):
        for version in RELEASES:  # a release in the middle of the range: the dashboard's "Cost by release"
            attrs = {"service.name": service, "service.version": version, "deployment.environment.name": "production"}
            provider = TracerProvider(resource=Resource.create(attrs))
            provider.add_span_processor(CostSpanProcessor())
            providers[(service, version)] = provider
    now = time.time_ns()
    tenants = list(TENANTS)
    weights = [5, 2, 8, 1, 3]  # a few big tenants, a long tail
    for _ in range(calls):
        tenant = rng.choices(tenants, weights)[0]
        plan = TENANTS[tenant]
        feature = rng.choices(list(FEATURES), list(FEATURES.values()))[0]
        prov, model, _w = rng.choices(MODELS, [m[2] for m in MODELS])[0]
        inp = int(rng.lognormvariate(8, 1.1)) + 50  # a few hundred to ~100k tokens
        cached = rng.choice([0, 0, int(inp * rng.uniform(0.3, 0.9))]) if feature in ("chat", "agent") else 0
        out = int(rng.lognormvariate(5.5, 0.9)) + 5
        start = now - int(rng.random() ** 1.3 * days * 86_400) * 1_000_000_000
        service = "worker" if feature == "summarize" else "chat-api"
        user = f"{tenant[:2]}_u{rng.randint(1, 8 if plan == 'free' else 20)}"
        with attribute_to(user_id=user, tenant_id=tenant, feature=feature, plan=plan):
            record_usage(
                provider=prov,
                model=model,
                input_tokens=inp,
                output_tokens=out,
                cache_read_tokens=cached,
                reasoning_tokens=0,
                tracer_provider=providers[
                    (service, RELEASES[0] if now - start > days * 43_200 * 10**9 else RELEASES[1])
                ],
                start_time=start,
                end_time=start + rng.randint(300, 20_000) * 1_000_000,
                error="rate_limit_exceeded" if rng.random() < 0.02 else None,
            )
    for provider in providers.values():
        provider.shutdown()
