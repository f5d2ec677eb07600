/** The request workflow's query: where a request is and what it has done so far. */
import { defineQuery } from '@temporalio/workflow';
import type { Candidate } from '../routing/router.js';
import type { Attempt, RequestResult } from './requestTypes.js';

export interface RequestTrace {
  readonly workflowId: string;
  readonly requestId: string;
  readonly category: string;
  /** classifying, routing, calling a provider, or waiting on a durable timer (rate limit, budget, backoff). */
  readonly phase: 'classifying' | 'routing' | 'calling' | 'waiting';
  /** While waiting: on what (budget: next period or an approval; rate_limit: a provider's reset; backoff: a retry) and until when. */
  readonly waiting?: { readonly on: 'budget' | 'rate_limit' | 'backoff'; readonly until: string };
  /** Models left out because the workers cannot call them (provider not configured, circuit open). */
  readonly skipped: Array<{ model: string; why: string }>;
  readonly classification: { complexity: number; capabilities: string[]; inputTokens: number; signals: string[] } | null;
  readonly candidates: Candidate[];
  readonly attempts: Attempt[];
  readonly escalations: RequestResult['escalations'];
  readonly costNanos: number;
}

export const traceQuery = defineQuery<RequestTrace>('trace');
