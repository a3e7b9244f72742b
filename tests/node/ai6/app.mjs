// Vercel AI SDK 6: built-in telemetry (experimental_telemetry), attribution in its metadata.
import * as ai from 'ai';
import { createOpenAI } from '@ai-sdk/openai';
import { z } from 'zod';
import { startTracing } from '../otel.mjs';
import { run } from '../scenarios.mjs';

const provider = startTracing('support-node-ai6');
const model = createOpenAI({ baseURL: process.env.OPENAI_BASE_URL, apiKey: 'test' }).chat('gpt-4o-mini');
await run(ai, model, z, {
  experimental_telemetry: {
    isEnabled: true,
    functionId: 'support-bot',
    metadata: { tenantId: process.env.TENANT, userId: process.env.USER_ID, feature: process.env.FEATURE },
    tracer: provider.getTracer('ai'),
  },
});
await provider.shutdown();
