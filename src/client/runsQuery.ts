import { REQUEST_WORKFLOW_TYPE } from '../workflows/request/contract.js';

/** A string literal in a visibility query: backslashes, then quotes, escaped. */
export function visibilityString(value: string): string {
  return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

/** Request workflows on a task queue, narrowed by the user's visibility query and/or a default. */
export function requestRunsQuery(taskQueue: string, user?: string, extra?: string): string {
  const parts = [`WorkflowType = '${REQUEST_WORKFLOW_TYPE}'`, `TaskQueue = ${visibilityString(taskQueue)}`];
  if (extra) parts.push(extra);
  if (user && user.trim() !== '') parts.push(`(${user})`);
  return parts.join(' AND ');
}
