import { REQUEST_WORKFLOW_TYPE } from '../workflows/request/contract.js';

/** Request workflows on a task queue, narrowed by the user's visibility query and/or a default. */
export function requestRunsQuery(taskQueue: string, user?: string, extra?: string): string {
  const parts = [`WorkflowType = '${REQUEST_WORKFLOW_TYPE}'`, `TaskQueue = '${taskQueue.replace(/'/g, "\\'")}'`];
  if (extra) parts.push(extra);
  if (user && user.trim() !== '') parts.push(`(${user})`);
  return parts.join(' AND ');
}
