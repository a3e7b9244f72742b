// Vercel AI SDK 7: the @ai-sdk/otel integration (INTEGRATION=otel: GenAI semconv spans;
// legacy: the v6 span shapes), attribution in runtimeContext.
import * as ai from 'ai';
import { createOpenAI } from '@ai-sdk/openai';
import { LegacyOpenTelemetry, OpenTelemetry } from '@ai-sdk/otel';
import { z } from 'zod';
import { startTracing } from '../otel.mjs';
import { run } from '../scenarios.mjs';

const provider = startTracing('support-node-ai7');
const tracer = provider.getTracer('ai');
ai.registerTelemetry(process.env.INTEGRATION === 'legacy' ? new LegacyOpenTelemetry({ tracer })
  : new OpenTelemetry({ tracer, runtimeContext: true }));
const model = createOpenAI({ baseURL: process.env.OPENAI_BASE_URL, apiKey: 'test' }).chat('gpt-4o-mini');
await run(ai, model, z, {
  runtimeContext: { tenantId: process.env.TENANT, userId: process.env.USER_ID, feature: process.env.FEATURE },
  telemetry: { functionId: 'support-bot', includeRuntimeContext: { tenantId: true, userId: true, feature: true } },
});
await provider.shutdown();
