/**
 * The ending every entity workflow shares: when its run has grown long enough (the server
 * suggests it, or the entity's own count of messages), let every message handler still running
 * finish, then continue as new with what it carries, read after the drain so nothing a handler
 * did is lost. An entity still on a request queue (started before entities had their own) moves
 * to that queue's entities queue here.
 */
import { allHandlersFinished, condition, makeContinueAsNewFunc, type Workflow, workflowInfo } from '@temporalio/workflow';
import { continueOnQueue } from './taskQueues.js';

export async function continueAsNewWhenDrained<F extends Workflow>(
  carry: () => Parameters<F>,
  opts: { readonly memo?: () => Record<string, unknown> | undefined } = {},
): Promise<never> {
  await condition(allHandlersFinished);
  const taskQueue = continueOnQueue(workflowInfo().taskQueue);
  const memo = opts.memo?.();
  return makeContinueAsNewFunc<F>({ ...(taskQueue ? { taskQueue } : {}), ...(memo ? { memo } : {}) })(...carry());
}
