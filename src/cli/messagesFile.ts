/**
 * `ask --messages FILE`: a conversation from a JSON file: an array of messages, or an OpenAI chat
 * request body (read as an OpenAI Batch line's body is: model, token limit, temperature and
 * response_format and tools apply; stream and the like are refused, naming the field).
 */
import { readFileSync } from 'node:fs';
import { InvalidArgumentError } from 'commander';
import { fromOpenAIBatchLine, messagesFromOpenAI } from '../batch/openaiBatch.js';
import type { RequestInput } from '../workflows/request/contract.js';

export function chatRequestFromFile(path: string): RequestInput {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new InvalidArgumentError(
      `--messages ${path}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : `not JSON (${(e as Error).message})`}`,
    );
  }
  if (Array.isArray(raw)) {
    const messages = messagesFromOpenAI(raw, `--messages ${path}: messages`);
    if (!Array.isArray(messages)) throw new InvalidArgumentError(messages.error);
    return { messages };
  }
  if (!raw || typeof raw !== 'object') throw new InvalidArgumentError(`--messages ${path}: must be a JSON array of messages or an OpenAI chat request body`);
  const converted = fromOpenAIBatchLine({ custom_id: 'cli', method: 'POST', url: '/v1/chat/completions', body: raw });
  if (!converted.ok) throw new InvalidArgumentError(`--messages ${path}: ${converted.error}`);
  const { requestId: _id, ...request } = converted.request;
  return request;
}
