/**
 * What a request does next, as data: every step that reacts to an outcome (a budget denial, a
 * failed attempt, an answer, an operator's escalation, every candidate rate-limited) returns one
 * `Next`, and `serve()` (./llmRequest.ts) is the only code that acts on it: it moves the chain's
 * cursor, keeps the skip and rate-limit lists, starts the waits and carries the routing reason.
 * Steps write only the request's record (attempts, escalations, quality scores). The one other
 * writer is the routing step that starts the request (payFirst, or routeLocally): it sets the
 * first selection, before the loop begins.
 */
import type { RoutingReason } from '../sinks.js';
import type { Candidate } from '../../routing/router.js';
import type { RequestResult } from './contract.js';
import type { RecordedSelection } from './v4/recorded.js';

export type Next =
  /** The same candidate again, after a durable backoff (the retry policy's delay, or a rate-limit reset). */
  | { readonly kind: 'retry'; readonly afterMs: number; readonly on: 'backoff' | 'rate_limit'; readonly maxRateLimitWaitMs: number }
  /** The same candidate again, after waiting on the budget until a time (an approval or an escalation ends it early). */
  | { readonly kind: 'wait'; readonly on: 'budget'; readonly untilMs: number; readonly waitingSince: number }
  /** The next candidate of the chain; these models are left out for the rest of this pass. */
  | {
      readonly kind: 'next';
      readonly reason: RoutingReason;
      readonly skip: readonly string[];
      readonly rateLimited?: { readonly until: number; readonly candidate: Candidate };
      readonly maxRateLimitWaitMs: number;
    }
  /** A new selection, tried from its start; `forget` says what the request stops remembering. */
  | {
      readonly kind: 'rerouted';
      readonly reason: RoutingReason;
      readonly selection: RecordedSelection;
      readonly forget: 'nothing' | 'skips' | 'skips-and-rate-limits';
      /** Models found too dear for the budget (left out of every later re-route). */
      readonly tooDear?: readonly string[];
      /** A model whose answer failed its checks (left out of every later escalation). */
      readonly qualityFailed?: string;
    }
  /** Another pass over the rate-limited candidates, after the earliest reset. */
  | { readonly kind: 'reset'; readonly chain: readonly Candidate[]; readonly afterMs: number }
  /** The request has its answer. */
  | { readonly kind: 'done'; readonly result: RequestResult };

/** A decision that keeps the request going (everything but `done`). */
export type Move = Exclude<Next, { readonly kind: 'done' }>;

/** What a step that reacts to a paid call's outcome decides (a new pass after rate limits is serve()'s own). */
export type StepDecision = Exclude<Next, { readonly kind: 'reset' }>;
