/** `ask --messages FILE`: a conversation from a JSON file (an array of messages, or an OpenAI chat request body). */
import { readFileSync } from 'node:fs';
import { InvalidArgumentError } from 'commander';
import { messagesFromOpenAI } from '../batch/openaiBatch.js';
import type { ChatMessage } from '../workflows/conversation.js';

export function messagesFromFile(path: string): ChatMessage[] {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new InvalidArgumentError(`--messages ${path}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : `not JSON (${(e as Error).message})`}`);
  }
  const list = Array.isArray(raw) ? raw : (raw as { messages?: unknown } | null)?.messages;
  const messages = messagesFromOpenAI(list, `--messages ${path}: messages`);
  if (!Array.isArray(messages)) throw new InvalidArgumentError(messages.error);
  return messages;
}
