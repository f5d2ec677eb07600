/**
 * A server-side batch: reads the input file page by page (an activity), runs each line as a child
 * request workflow with at most `concurrency` in flight, and folds the outcomes into a summary.
 * After `childrenPerRun` children (or when the server suggests it) it drains and continues as new,
 * so a batch of any size keeps a bounded history. A request id that already ran is collected, not
 * run again.
 */
import {
  ApplicationFailure,
  ChildWorkflowFailure,
  condition,
  continueAsNew,
  executeChild,
  proxyActivities,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/common';
import { addInvalid, addResult, type BatchResultLine, emptySummary, failedResultLine } from '../../batch/summary.js';
import { type BatchActivities, type BatchPage, type BatchRunInput, type BatchRunStatus, type BatchState, batchStatusQuery, type PageItem } from './contract.js';
import { llmRequest } from '../request/llmRequest.js';
import { instructionOf } from '../conversation.js';
import { requestFailureDetails, requestMemo, workflowIdFor, LlmBatch, LlmCategory, LlmFeature, UNSPECIFIED_FEATURE } from '../request/contract.js';
import { refusePlaintext } from '../messages.js';

const reader = proxyActivities<BatchActivities>({
  startToCloseTimeout: '2 minutes',
  retry: { initialInterval: '1 second', maximumInterval: '30 seconds', nonRetryableErrorTypes: ['BatchSourceChanged'] },
});
/** Waits for a request that already existed; it may run for as long as its budget waits allow. */
const waiter = proxyActivities<BatchActivities>({
  startToCloseTimeout: '30 days',
  heartbeatTimeout: '1 minute',
  retry: { initialInterval: '1 second', maximumInterval: '1 minute' },
});

function failedFromChild(item: PageItem, workflowId: string, e: ChildWorkflowFailure): BatchResultLine {
  const cause = e.cause;
  const app = cause instanceof ApplicationFailure ? cause : undefined;
  return failedResultLine(
    item.id,
    workflowId,
    { type: app?.type ?? cause?.name ?? 'Failed', message: cause?.message ?? e.message },
    requestFailureDetails(app?.details?.[0]),
  );
}

export async function batchRun(input: BatchRunInput): Promise<BatchRunStatus> {
  refusePlaintext([input], 'batchRun');
  const info = workflowInfo();
  const concurrency = Math.max(1, input.concurrency);
  const childrenPerRun = Math.max(1, input.childrenPerRun ?? 1000);
  const pageSize = Math.max(1, input.pageSize ?? 100);
  const st: BatchState = input.state ?? { cursor: { offset: 0, lineNo: 0 }, summary: emptySummary(), runs: 1, startedAt: Date.now() };
  let inFlight = 0;
  const running = new Set<string>();
  let eof = false;
  let buffer: PageItem[] = [];
  let startedThisRun = 0;
  let finished = false;

  const status = (): BatchRunStatus => ({
    batchId: input.batchId,
    state: finished ? 'completed' : 'running',
    source: input.source,
    done: st.summary.requests,
    inFlight,
    inFlightIds: [...running].slice(0, 100),
    runs: st.runs,
    startedAt: new Date(st.startedAt).toISOString(),
    summary: { ...st.summary, wallMs: finished ? st.summary.wallMs : Date.now() - st.startedAt },
  });
  setHandler(batchStatusQuery, status);

  const runOne = async (item: PageItem): Promise<void> => {
    // The request's id (an OpenAI line's custom_id may map to another; see openaiBatch.ts). Equal
    // to item.id in every run recorded before such ids were accepted, so replays are unchanged.
    const workflowId = workflowIdFor(item.request.requestId);
    const category = item.request.category ?? 'standard';
    let line: BatchResultLine;
    running.add(workflowId);
    try {
      const r = await executeChild(llmRequest, {
        workflowId,
        args: [{ ...input.requestDefaults, ...item.request }],
        taskQueue: info.taskQueue,
        memo: { ...requestMemo(input.redactTitles ? undefined : instructionOf(item.request), category, { batchId: input.batchId, line: item.line }) },
        typedSearchAttributes: [
          { key: LlmCategory, value: category },
          { key: LlmFeature, value: typeof item.request.feature === 'string' ? item.request.feature : UNSPECIFIED_FEATURE },
          { key: LlmBatch, value: input.batchId },
        ],
        parentClosePolicy: 'REQUEST_CANCEL',
        workflowIdReusePolicy: 'REJECT_DUPLICATE',
      });
      line = {
        id: item.id,
        workflowId,
        status: 'completed',
        model: r.model,
        tier: r.tier,
        costNanos: r.costNanos,
        premiumBaselineCostNanos: r.premiumBaselineCostNanos,
      };
    } catch (e) {
      if (e instanceof WorkflowExecutionAlreadyStartedError) {
        st.summary.alreadyStarted += 1;
        line = await waiter.awaitRequest({ id: item.id, workflowId });
      } else if (e instanceof ChildWorkflowFailure) {
        line = failedFromChild(item, workflowId, e);
      } else {
        throw e;
      }
    } finally {
      running.delete(workflowId);
    }
    const { text: _t, ...kept } = line;
    addResult(st.summary, kept);
  };

  const shouldRoll = (): boolean => startedThisRun >= childrenPerRun || workflowInfo().continueAsNewSuggested;
  for (;;) {
    if (buffer.length === 0) {
      // Only at a page boundary: the cursor then points at the first line not yet started.
      if (eof || shouldRoll()) break;
      const page: BatchPage = await reader.readBatchPage({
        source: input.source,
        cursor: st.cursor,
        maxLines: Math.min(pageSize, childrenPerRun - startedThisRun),
        category: input.category,
        ...(input.feature ? { feature: input.feature } : {}),
        ...(input.duplicates ? { duplicates: input.duplicates } : {}),
        // Gateway batches only (runs before them never set these: the same activity input then).
        ...(input.overrides ? { overrides: input.overrides } : {}),
        ...(input.requestIdPrefix ? { requestIdPrefix: input.requestIdPrefix } : {}),
      });
      for (const bad of page.invalid) addInvalid(st.summary, bad);
      st.cursor = page.next;
      eof = page.eof;
      buffer = page.items;
      continue;
    }
    await condition(() => inFlight < concurrency);
    const item = buffer.shift() as PageItem;
    inFlight += 1;
    startedThisRun += 1;
    void runOne(item).finally(() => {
      inFlight -= 1;
    });
  }
  await condition(() => inFlight === 0);
  if (!eof) {
    await continueAsNew<typeof batchRun>({ ...input, state: { ...st, runs: st.runs + 1 } });
  }
  finished = true;
  st.summary.wallMs = Date.now() - st.startedAt;
  return status();
}
