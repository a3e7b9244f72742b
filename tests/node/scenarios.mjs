// The calls every app makes, whatever the AI SDK version: one generateText, one streamText,
// or a tool-calling run of several steps (SCENARIO), with options the version's own way.
export async function run(ai, model, z, options) {
  const { generateText, streamText, tool, stepCountIs } = ai;
  const scenario = process.env.SCENARIO;
  if (scenario === 'generate') {
    await generateText({ model, prompt: 'Hello', ...options });
  } else if (scenario === 'stream') {
    const result = streamText({ model, prompt: 'Hello', ...options });
    for await (const _ of result.textStream) { /* read to the end */ }
  } else if (scenario === 'tools') {
    const weather = tool({
      description: 'The weather in a city',
      inputSchema: z.object({ city: z.string() }),
      execute: async ({ city }) => ({ city, celsius: 21 }),
    });
    await generateText({ model, prompt: 'Weather in Paris?', tools: { weather }, stopWhen: stepCountIs(3), ...options });
  } else {
    throw new Error(`unknown SCENARIO ${scenario}`);
  }
}
