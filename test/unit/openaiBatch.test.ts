import { describe, expect, it } from 'vitest';
import { parseBatchLine } from '../../src/batch/batchInput.js';
import { toOpenAIBatchOutput } from '../../src/batch/openaiBatch.js';

const line = (body: Record<string, unknown>, extra: Record<string, unknown> = {}) =>
  JSON.stringify({ custom_id: 'req-1', method: 'POST', url: '/v1/chat/completions', body, ...extra });
const parse = (text: string) => parseBatchLine(text, 1, { category: 'batch' });

describe('OpenAI Batch input lines', () => {
  it('runs any custom_id OpenAI accepts: one outside the request-id alphabet or length maps to a stable request id; the output keeps the original (issue 21, item 11)', () => {
    const ids = ['has space', 'ticket #42 / ünïcode', 'x'.repeat(500), '日本語のID'];
    const mapped = ids.map((custom) => {
      const p = parse(line({ messages: [{ role: 'user', content: 'x' }] }, { custom_id: custom }));
      expect(p?.ok).toBe(true);
      if (!p?.ok) throw new Error('refused');
      expect(p.item.id).toBe(custom);
      expect(p.item.request.requestId).toMatch(/^[A-Za-z0-9._:/-]{1,200}$/);
      expect(p.item.request.requestId).toMatch(/-cid-[0-9a-f]{24}$/);
      return p.item.request.requestId;
    });
    expect(new Set(mapped).size).toBe(ids.length);
    // The same custom_id maps the same way (re-running the file finds its requests).
    const again = parse(line({ messages: [{ role: 'user', content: 'x' }] }, { custom_id: 'has space' }));
    expect(again?.ok && again.item.request.requestId).toBe(mapped[0]);
    expect(mapped[0]).toMatch(/^has_space-cid-/);
    // A safe custom_id is the request id itself.
    const plain = parse(line({ messages: [{ role: 'user', content: 'x' }] }, { custom_id: 'req-9' }));
    expect(plain?.ok && plain.item.request.requestId).toBe('req-9');
    expect(
      toOpenAIBatchOutput(
        { id: 'has space', workflowId: 'w', status: 'completed', model: 'm', tier: 'economy', costNanos: 1, premiumBaselineCostNanos: 2, text: 'ok' },
        0,
      ),
    ).toMatchObject({
      custom_id: 'has space',
    });
  });

  it('maps custom_id, model, messages, token limit, temperature and JSON modes', () => {
    const routed = parse(
      line({
        model: 'auto',
        messages: [
          { role: 'developer', content: 'Be brief.' },
          { role: 'user', content: 'Hi' },
        ],
        max_tokens: 30,
        temperature: 0.5,
        top_p: 0.9,
      }),
    );
    expect(routed).toEqual({
      ok: true,
      item: {
        line: 1,
        id: 'req-1',
        request: {
          requestId: 'req-1',
          category: 'batch',
          messages: [
            { role: 'system', content: 'Be brief.' },
            { role: 'user', content: 'Hi' },
          ],
          maxOutputTokens: 30,
          temperature: 0.5,
        },
      },
    });
    expect(
      toOpenAIBatchOutput(
        {
          id: 'a',
          workflowId: 'w',
          status: 'completed',
          model: 'm',
          tier: 'economy',
          costNanos: 1,
          premiumBaselineCostNanos: 2,
          text: 'cut',
          finishReason: 'max_tokens',
        },
        0,
      ),
    ).toMatchObject({ response: { body: { choices: [{ finish_reason: 'length' }] } } });
    const pinned = parse(
      line({
        model: 'gpt-4o-mini',
        messages: [{ role: 'user', content: 'x' }],
        max_completion_tokens: 5,
        max_tokens: 99,
        response_format: { type: 'json_schema', json_schema: { name: 'n', schema: { type: 'object' } } },
      }),
    );
    expect(pinned?.ok && pinned.item.request).toMatchObject({ model: 'gpt-4o-mini', maxOutputTokens: 5, quality: { jsonSchema: { type: 'object' } } });
    const json = parse(line({ messages: [{ role: 'user', content: 'x' }], response_format: { type: 'json_object' } }));
    expect(json?.ok && json.item.request).toMatchObject({ quality: { json: true } });
    expect(json?.ok && 'model' in json.item.request).toBe(false);
  });

  it('maps tools, tool_choice, parallel_tool_calls and tool turns, and writes calls back as tool_calls', () => {
    const weather = {
      type: 'function',
      function: { name: 'get_weather', description: 'Weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } },
    };
    const p = parse(
      line({
        messages: [
          { role: 'user', content: 'Weather in Paris?' },
          { role: 'assistant', content: null, tool_calls: [{ id: 'c1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } }] },
          { role: 'tool', tool_call_id: 'c1', content: [{ type: 'text', text: '18C' }] },
        ],
        tools: [weather, { type: 'function', function: { name: 'noop' } }],
        tool_choice: { type: 'function', function: { name: 'get_weather' } },
        parallel_tool_calls: false,
      }),
    );
    expect(p?.ok && p.item.request).toMatchObject({
      messages: [
        { role: 'user', content: 'Weather in Paris?' },
        { role: 'assistant', content: '', toolCalls: [{ id: 'c1', name: 'get_weather', arguments: '{"city":"Paris"}' }] },
        { role: 'tool', toolCallId: 'c1', content: '18C' },
      ],
      tools: [
        { name: 'get_weather', description: 'Weather', parameters: weather.function.parameters },
        { name: 'noop', parameters: { type: 'object', properties: {} } },
      ],
      toolChoice: { name: 'get_weather' },
      parallelToolCalls: false,
    });
    const out = toOpenAIBatchOutput(
      {
        id: 'req-1',
        workflowId: 'w',
        status: 'completed',
        model: 'm',
        tier: 'economy',
        costNanos: 1,
        premiumBaselineCostNanos: 2,
        text: '',
        toolCalls: [{ id: 'call_9', name: 'get_weather', arguments: '{"city":"Rome"}' }],
      },
      0,
    );
    expect(out).toMatchObject({
      response: {
        body: {
          choices: [
            {
              finish_reason: 'tool_calls',
              message: {
                role: 'assistant',
                content: null,
                tool_calls: [{ id: 'call_9', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Rome"}' } }],
              },
            },
          ],
        },
      },
    });
  });

  it('refuses what it cannot honour, naming the field', () => {
    const err = (text: string): string => {
      const p = parse(text);
      return p && !p.ok ? p.bad.error : 'accepted';
    };
    expect(err(line({ messages: [{ role: 'user', content: 'x' }], n: 2 }))).toMatch(/^line 1: body\.n: only 1 choice/);
    expect(err(line({ messages: [{ role: 'user', content: 'x' }], stream: true }))).toMatch(/body\.stream: batch requests are not streamed/);
    expect(err(line({ messages: [{ role: 'user', content: 'x' }], frobnicate: 1 }))).toMatch(/body\.frobnicate: not a chat completions field/);
    expect(err(line({ messages: [{ role: 'function', content: 'x' }] }))).toMatch(
      /body\.messages\[0\]\.role: "function" is not supported .*send tool messages/,
    );
    expect(err(line({ messages: [{ role: 'tool', content: 'x' }] }))).toMatch(/body\.messages\[0\]\.tool_call_id: must be a string/);
    const weather = { type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } } };
    expect(err(line({ messages: [{ role: 'user', content: 'x' }], tools: [weather], tool_choice: 'sometimes' }))).toMatch(/body\.tool_choice: must be "auto"/);
    expect(err(line({ messages: [{ role: 'user', content: 'x' }], tools: [{ ...weather, function: { name: 'a b' } }] }))).toMatch(
      /body\.tools\[0\]\.function\.name: must be 1-64 letters/,
    );
    expect(err(line({ messages: [{ role: 'user', content: 'x' }], parallel_tool_calls: false, tool_choice: 'auto' }))).toMatch(
      /body\.tool_choice: needs tools/,
    );
    expect(
      err(
        line({
          messages: [
            { role: 'user', content: 'x' },
            { role: 'assistant', content: null, tool_calls: [{ id: 'c1', type: 'function', function: { name: 'get_weather', arguments: '{}' } }] },
            { role: 'tool', tool_call_id: 'c2', content: '1' },
          ],
          tools: [weather],
        }),
      ),
    ).toMatch(/body\.messages\[2\]\.tool_call_id: names no call of the assistant message before it \(its calls: c1\)/);
    expect(err(line({ messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'x' } }] }] }))).toMatch(
      /body\.messages\[0\]\.content\[0\]: only text parts/,
    );
    expect(err(line({ messages: [{ role: 'user', content: 'x' }] }, { method: 'GET' }))).toMatch(/method: must be "POST"/);
    expect(err(line({ messages: [{ role: 'user', content: 'x' }] }, { custom_id: '' }))).toMatch(/custom_id: is required/);
    expect(err(line({ messages: [{ role: 'user', content: 'x' }], max_tokens: 0 }))).toMatch(/body\.max_completion_tokens \(or max_tokens\): must be >= 1/);
    expect(
      err(
        line({
          messages: [
            { role: 'user', content: 'x' },
            { role: 'assistant', content: 'y' },
          ],
        }),
      ),
    ).toMatch(/messages\[1\]: the last message must be from the user/);
    expect(err(line({ messages: [{ role: 'user', content: 'x' }], response_format: { type: 'yaml' } }))).toMatch(/response_format\.type/);
    expect(err(line({ messages: [{ role: 'user', content: 'x' }], max_tokens: '20' }))).toMatch(/^line 1: body\.max_completion_tokens \(or max_tokens\): /);
    expect(err(line({ messages: [{ role: 'user', content: 'x' }] }, { custom_id: 7 }))).toMatch(/custom_id: must be a string/);
    expect(err(JSON.stringify({ custom_id: 'a', method: 'POST', url: '/v1/chat/completions' }))).toMatch(/body: must be a chat completions request object/);
    expect(err(line({ messages: [{ role: 'user', content: 'x' }], constructor: 1 }))).toMatch(/body\.constructor: not a chat completions field/);
    expect(err(line({ messages: [{ role: 'user', content: '   ' }] }))).toMatch(/body\.messages\[0\]\.content: must not be empty or only whitespace/);
    // Empty or null "off" values are not requests for the feature.
    expect(err(line({ messages: [{ role: 'user', content: 'x' }], tools: [], n: null, stream: false }))).toBe('accepted');
  });

  it('tells the model about a JSON mode as well as checking the answer', () => {
    const p = parse(
      line({
        messages: [{ role: 'user', content: 'x' }],
        response_format: { type: 'json_schema', json_schema: { name: 'n', schema: { type: 'object', required: ['city'] } } },
      }),
    );
    const messages = p?.ok ? (p.item.request.messages ?? []) : [];
    expect(messages.at(-1)).toEqual({ role: 'system', content: expect.stringContaining('"required":["city"]') });
  });
});

describe('OpenAI Batch output lines', () => {
  const base = { id: 'req-1', workflowId: 'llm-req-1', model: 'gpt-4o-mini', tier: 'standard', costNanos: 1200, premiumBaselineCostNanos: 9000 };
  it('a completed request is a chat.completion with usage and the Switchyard cost beside it', () => {
    const out = toOpenAIBatchOutput(
      { ...base, status: 'completed', text: 'Bonjour', usage: { inputTokens: 10, cachedInputTokens: 2, outputTokens: 3 } },
      1_700_000_000,
    );
    expect(out).toMatchObject({
      custom_id: 'req-1',
      error: null,
      response: {
        status_code: 200,
        request_id: 'llm-req-1',
        body: {
          object: 'chat.completion',
          created: 1_700_000_000,
          model: 'gpt-4o-mini',
          choices: [{ message: { role: 'assistant', content: 'Bonjour' }, finish_reason: 'stop' }],
          usage: { prompt_tokens: 12, completion_tokens: 3, total_tokens: 15, prompt_tokens_details: { cached_tokens: 2 } },
          switchyard: { cost_nanos: 1200, premium_baseline_cost_nanos: 9000, tier: 'standard' },
        },
      },
    });
    expect(toOpenAIBatchOutput({ ...base, status: 'completed', text: 'x' }, 0).id).toBe(out.id);
  });
  it('a failed request has no response and its failure type as the error code', () => {
    expect(toOpenAIBatchOutput({ ...base, status: 'failed', error: { type: 'BudgetExceeded', message: 'over budget' } }, 0)).toMatchObject({
      custom_id: 'req-1',
      response: null,
      error: { code: 'BudgetExceeded', message: 'over budget' },
    });
  });
});
