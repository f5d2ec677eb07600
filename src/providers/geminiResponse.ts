/** Gemini's generateContent answer as Switchyard's ChatResponse (the adapter's live calls and its batch API's lines). */
import type { FunctionCall, GenerateContentResponse } from '@google/genai';
import { madeUpCallId } from './toolWire.js';
import type { ChatResponse } from './types.js';

/**
 * A generateContent answer (a live call's last piece, or a batch line's) as a ChatResponse, with
 * the text and calls read from it; undefined when it has no candidate or usage. Calls without an
 * id get one made from `idBase` (the request's id, or the batch line's), by position.
 */
export function geminiResponseOf(
  res: GenerateContentResponse,
  text: string,
  calls: readonly FunctionCall[],
  idBase: string | undefined,
  model: string,
): ChatResponse | undefined {
  const usage = res.usageMetadata;
  const candidate = res.candidates?.[0];
  if (!candidate || !usage || typeof usage.promptTokenCount !== 'number') return undefined;
  const cached = usage.cachedContentTokenCount ?? 0;
  const toolCalls = calls.map((c, i) => ({ id: c.id ?? madeUpCallId(idBase, i), name: c.name ?? '', arguments: JSON.stringify(c.args ?? {}) }));
  return {
    text,
    ...(toolCalls.length > 0 ? { toolCalls } : {}),
    usage: {
      inputTokens: usage.promptTokenCount - cached,
      cachedInputTokens: cached,
      outputTokens: (usage.candidatesTokenCount ?? 0) + (usage.thoughtsTokenCount ?? 0),
    },
    finishReason: candidate.finishReason ?? 'unknown',
    providerModel: res.modelVersion ?? model,
  };
}

/** The text parts of a response's first candidate (not `res.text`, which warns on a response that also calls functions). */
export function textOf(res: GenerateContentResponse): string {
  return (res.candidates?.[0]?.content?.parts ?? [])
    .filter((p) => typeof p.text === 'string' && p.thought !== true)
    .map((p) => p.text)
    .join('');
}

export function functionCallsOf(res: GenerateContentResponse): FunctionCall[] {
  return (res.candidates?.[0]?.content?.parts ?? []).flatMap((p) => (p.functionCall ? [p.functionCall] : []));
}
