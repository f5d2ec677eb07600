/**
 * Every `patched()` id in the workflow code, in one list: what it guards, when it came, which
 * recorded histories (test/histories) replay through it, and when it can go. A unit test
 * (test/unit/patches.test.ts) checks that every id the code uses is listed here and that every
 * history named here exists and, where it says so, holds the patch's marker.
 *
 * How to retire a patch: once no run started before it can still be open (the longest a run of
 * that workflow lives, plus the retention you replay from), replace `patched(id)` with
 * `deprecatePatch(id)` for one release, then drop the old branch, its histories and this entry.
 * Pure data: workflow code may import it.
 */

export interface PatchRecord {
  readonly id: string;
  /** The workflow type whose code calls it. */
  readonly workflow: 'llmRequest' | 'budgetEntity' | 'routingEntity' | 'experimentEntity' | 'deferredCollector' | 'deferredBatch';
  /** What runs recorded before it do differently (the old branch kept for them). */
  readonly guards: string;
  /** The history prefix it arrived with (test/histories/vN-*), or the commit when no set was recorded then. */
  readonly since: string;
  /** Recorded histories whose runs took the new branch: each holds the patch marker. */
  readonly markerIn: readonly string[];
  /** Recorded histories that replay through the old branch (recorded before the patch). */
  readonly oldBranchIn: readonly string[];
  /** When the old branch can be deleted. */
  readonly retire: string;
}

const LEGACY_RETIRE = 'with the pre-v3 request path (request/v2/llmRequest.ts): once no run started before request-v3 is open';

export const PATCHES: readonly PatchRecord[] = [
  {
    id: 'lean-request-path',
    workflow: 'llmRequest',
    guards: 'one patch call for all of v2 instead of one per change (each patched() upserts a search attribute)',
    since: 'v2',
    markerIn: ['v2-success.json', 'v2-fallback.json', 'v2-escalation.json'],
    oldBranchIn: ['v1-success.json', 'v1-fallback.json'],
    retire: LEGACY_RETIRE,
  },
  {
    id: 'request-limits',
    workflow: 'llmRequest',
    guards: 'the size and reserved-name limits on the input (runs recorded before are not checked against them)',
    since: 'v1 (between v1 and v2)',
    markerIn: [],
    oldBranchIn: ['v1-success.json', 'v1-budget-denied.json'],
    retire: LEGACY_RETIRE,
  },
  {
    id: 'run-scoped-reservation-ids',
    workflow: 'llmRequest',
    guards: "reservation ids carry the run id, so a re-driven request never collides with its earlier run's settlements",
    since: 'v1 (between v1 and v2)',
    markerIn: [],
    oldBranchIn: ['v1-success.json', 'v1-fallback.json'],
    retire: LEGACY_RETIRE,
  },
  {
    id: 'bounded-budget-waits',
    workflow: 'llmRequest',
    guards: 'the current rule for budget waits (runs started before keep the old one: wait until the period ends or maxWaitMs)',
    since: 'v1 (between v1 and v2)',
    markerIn: [],
    oldBranchIn: ['v1-budget-denied.json'],
    retire: LEGACY_RETIRE,
  },
  {
    id: 'cap-5xx-retry-after',
    workflow: 'llmRequest',
    guards: 'a Retry-After on a 5xx above the bound moves to the next model (it used to be waited out)',
    since: 'v1 (between v1 and v2)',
    markerIn: [],
    oldBranchIn: ['v1-fallback.json'],
    retire: LEGACY_RETIRE,
  },
  {
    id: 'request-v3',
    workflow: 'llmRequest',
    guards: 'the current request path (llmRequest.ts) against the pre-v3 one (request/v2/llmRequest.ts)',
    since: 'v3',
    markerIn: ['v3-success.json', 'v8-success.json', 'v9-experiment-escalation.json'],
    oldBranchIn: ['v1-success.json', 'v2-success.json'],
    retire: 'when no run started before v3 is open; then request/v2/ and the v1/v2 request histories go',
  },
  {
    id: 'settle-local',
    workflow: 'llmRequest',
    guards: 'the settlement is a local activity in the workflow task that records the answer (it was a step of the paid-call activity)',
    since: 'v4',
    markerIn: ['v4-success.json', 'v8-success.json'],
    oldBranchIn: ['v3-success.json'],
    retire: 'when no run started before v4 is open',
  },
  {
    id: 'route-selection',
    workflow: 'llmRequest',
    guards: "a re-route selects with the worker's retry policy in its verdicts (selectRoute; runs recorded before used selectModels)",
    since: 'v5',
    markerIn: ['v5-escalation.json', 'v5-budget-downgrade.json'],
    oldBranchIn: ['v4-escalation.json', 'v4-budget-downgrade.json'],
    retire: 'when no run started before v5 is open',
  },
  {
    id: 'learning-kept-through-reroutes',
    workflow: 'llmRequest',
    guards: 'an experiment request re-routed by an escalation still reports to its experiment',
    since: 'v9',
    markerIn: ['v9-experiment-escalation.json'],
    oldBranchIn: ['v7-experiment-escalation.json'],
    retire: 'when no run started before v9 is open',
  },
  {
    id: 'alerts-off-critical-path',
    workflow: 'budgetEntity',
    guards: 'alerts go out without holding up the loop (runs recorded before awaited each alert in turn)',
    since: 'v2',
    markerIn: ['v2-budget-entity.json', 'v8-budget-entity.json'],
    oldBranchIn: ['v1-budget-entity.json'],
    retire: 'when no budget entity run (a run lasts until its next continue-as-new) started before v2 is open',
  },
  {
    id: 'budget-reallocation',
    workflow: 'budgetEntity',
    guards: 'reallocation on a schedule (runs recorded before never reallocate)',
    since: 'v7',
    markerIn: ['v7-budget-realloc-entity.json', 'v8-budget-realloc-entity.json'],
    oldBranchIn: ['v6-budget-entity.json'],
    retire: 'when no budget entity run started before v7 is open',
  },
  {
    id: 'routing-policy-epoch',
    workflow: 'routingEntity',
    guards: 'the policy epoch published in the memo with each control change',
    since: 'v8',
    markerIn: ['v8-routing-entity.json'],
    oldBranchIn: ['v7-routing-entity.json'],
    retire: 'when no routing entity run started before v8 is open',
  },
  {
    id: 'experiment-stop-in-force',
    workflow: 'experimentEntity',
    guards: '`experiment stop` returns once routing has taken the experiment off the traffic',
    since: 'v8',
    markerIn: ['v8-experiment-entity.json'],
    oldBranchIn: ['v7-experiment-entity.json'],
    retire: 'when no experiment entity run started before v8 is open',
  },
  {
    id: 'experiment-stop-awaits-ended',
    workflow: 'experimentEntity',
    guards: "a stop right after the experiment concluded waits for the conclusion's ended notice to reach routing",
    since: 'v10',
    markerIn: ['v10-experiment-entity-concluded-stop.json'],
    oldBranchIn: ['v8-experiment-entity.json'],
    retire: 'when no experiment entity run started before v10 is open',
  },
  {
    id: 'request-stream',
    workflow: 'llmRequest',
    guards:
      "a streamed request (a gateway client's stream: true) sends its relay to its answer calls, is never hedged, and records checks without escalating; runs before it never carry `stream`, so the old branch is the same code without these",
    since: 'v11',
    markerIn: ['v11-stream.json', 'v11-stream-interrupted.json'],
    oldBranchIn: ['v8-success.json', 'v9-experiment-escalation.json'],
    retire: 'when no request run started before v11 is open',
  },
  {
    id: 'tool-calls',
    workflow: 'llmRequest',
    guards:
      'an answer made of tool calls is checked as calls (the tool named, its arguments against its schema) and escalates when they fail; runs before it never offered tools, so their answers never held calls and the old branch is the text checks',
    since: 'v12',
    markerIn: ['v12-tool-calls.json'],
    oldBranchIn: ['v11-stream.json', 'v8-success.json'],
    retire: 'when no request run started before v12 is open',
  },
  {
    id: 'deferred',
    workflow: 'llmRequest',
    guards:
      "a request with a deadline first waits for its model's provider batch, or a stronger model's at no more than the routed price, and a line the provider fails goes to one more batch before a live call (workflows/request/deferred.ts); runs before it never had a deadline (the field did not exist), so they never reach the marker and take the live path",
    since: 'v13',
    markerIn: ['v13-deferred-batch.json', 'v13-deferred-rebatch.json', 'v13-deferred-live.json'],
    oldBranchIn: ['v12-tool-calls.json', 'v8-success.json'],
    retire: 'when no request run started before v13 is open',
  },
  {
    id: 'deferred-await',
    workflow: 'llmRequest',
    guards:
      'a deferred request waits for its line in one activity that the deliverer completes by its id (its schedule-to-close timeout is the leave time), and the deliverer settles the answer it hands over; before it, the request waited on a timer for an update and settled the answer itself (workflows/request/deferred.ts). The update is still taken, for deliverers from before the change',
    since: 'v14',
    markerIn: ['v14-deferred-batch.json', 'v14-deferred-rebatch.json', 'v14-deferred-live.json'],
    oldBranchIn: ['v13-deferred-batch.json', 'v13-deferred-rebatch.json', 'v13-deferred-live.json'],
    retire: 'when no deferred request started before v14 is open',
  },
  {
    id: 'collector-lean-upserts',
    workflow: 'deferredCollector',
    guards:
      'a collector no longer shows `submitting` between its batches (it lasts a moment, and the batch shows its own state): each upsert is a billed action (workflows/deferred/collector.ts)',
    since: 'v14',
    markerIn: ['v14-deferred-collector-entity.json'],
    oldBranchIn: ['v13-deferred-collector-entity.json'],
    retire: 'when no collector run started before v14 is open',
  },
  {
    id: 'batch-lean-upserts',
    workflow: 'deferredBatch',
    guards:
      'a provider batch no longer upserts `submitting` (set when the collector starts it) or `delivering` (it passes straight to `delivered`): each upsert is a billed action (workflows/deferred/batch.ts)',
    since: 'v14',
    markerIn: ['v14-deferred-batch-entity.json'],
    oldBranchIn: ['v13-deferred-batch-entity.json'],
    retire: 'when no provider batch started before v14 is open',
  },
  {
    id: 'batch-unsettled',
    workflow: 'deferredBatch',
    guards:
      'a provider batch whose delivery found the budget entity gone ends `unsettled` (not `delivered` or `returned`), its result holding the settlements, so `budget restore` finds and applies them (workflows/deferred/batch.ts)',
    since: 'v15',
    markerIn: ['v15-deferred-batch-entity-unsettled.json', 'v15-deferred-batch-entity-unsettled-failed.json'],
    oldBranchIn: [],
    retire: 'when no provider batch started before v15 is open',
  },
];
