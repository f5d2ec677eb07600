/**
 * A line of an OpenAI-shaped batch output file (OpenAI's Batch API, and Mistral's batch jobs,
 * which write the same shape): a chat completion under `response.body`, or an error. Both APIs'
 * modules read their lines here.
 */
import { callsOfOpenAI } from './toolWire.js';
import type { BatchLineResult } from './types.js';

export interface OutputLine {
  readonly custom_id: string;
  readonly response?: { readonly status_code: number; readonly body?: unknown } | null;
  readonly error?: { readonly code?: string | null; readonly message?: string | null } | null;
}

interface CompletionBody {
  choices?: Array<{
    message?: { content?: string | null; tool_calls?: Array<{ id?: string; type?: string; function?: { name?: string; arguments?: unknown } }> | null };
    finish_reason?: string | null;
  }>;
  usage?: { prompt_tokens: number; completion_tokens: number; prompt_tokens_details?: { cached_tokens?: number | null } | null };
  model?: string;
  error?: { message?: string };
}

/**
 * The line's answer, or why it has none: `expired` or `cancelled` from the error's code (OpenAI's
 * batch_expired / batch_cancelled, Mistral's timeout and cancel codes), or a line the batch never
 * reached when the batch itself `expired`; otherwise `errored`.
 */
export function outputLineResult(l: OutputLine, batchStatus?: string): BatchLineResult {
  const body = l.response?.body as CompletionBody | undefined;
  const choice = body?.choices?.[0];
  if (l.response?.status_code === 200 && choice && body?.usage) {
    const cached = body.usage.prompt_tokens_details?.cached_tokens ?? 0;
    const toolCalls = callsOfOpenAI(
      choice.message?.tool_calls?.filter((c) => c.type === undefined || c.type === 'function'),
      l.custom_id,
    );
    return {
      customId: l.custom_id,
      ok: true,
      res: {
        text: choice.message?.content ?? '',
        ...(toolCalls ? { toolCalls } : {}),
        usage: { inputTokens: body.usage.prompt_tokens - cached, cachedInputTokens: cached, outputTokens: body.usage.completion_tokens },
        finishReason: choice.finish_reason ?? 'unknown',
        providerModel: body.model ?? '',
      },
    };
  }
  const code = l.error?.code ?? '';
  const why = /expired|timeout/i.test(code) ? 'expired' : /cancel/i.test(code) ? 'cancelled' : batchStatus === 'expired' && !l.response ? 'expired' : 'errored';
  const message = l.error?.message ?? body?.error?.message ?? `status ${l.response?.status_code ?? 'none'}`;
  return { customId: l.custom_id, ok: false, why, message };
}
