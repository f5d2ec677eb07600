/**
 * Billable Temporal Cloud actions in a workflow history, counted by Temporal's published rules:
 * a start, each activity attempt (scheduled, plus each retry), all local activities recorded in
 * one workflow task as one, each search-attribute upsert, each signal, update, timer, child start,
 * external signal and continue-as-new. Heartbeats that reach the server also count but are not in
 * the history (Switchyard's call activity sends one per second only while a call runs past 1 s).
 * Version markers (patched) are not actions, nor is the SDK's upsert of the TemporalChangeVersion
 * search attribute that comes with a patch (Temporal Cloud's actions page exempts it); an upsert
 * that sets other attributes too counts once. Pure: reads a history object only.
 */
import type { temporal } from '@temporalio/proto';

export interface ActionCount {
  readonly total: number;
  readonly byKind: Readonly<Record<string, number>>;
}

type History = temporal.api.history.v1.IHistory;

const LOCAL_ACTIVITY_MARKER = 'core_local_activity';
const VERSION_ATTRIBUTE = 'TemporalChangeVersion';

/** An upsert that sets only the versioning attribute is free. */
function isVersionUpsertOnly(fields: Record<string, unknown> | null | undefined): boolean {
  const keys = Object.keys(fields ?? {});
  return keys.length > 0 && keys.every((k) => k === VERSION_ATTRIBUTE);
}

export function billableActions(history: History): ActionCount {
  const byKind: Record<string, number> = {};
  const add = (kind: string, n = 1): void => {
    byKind[kind] = (byKind[kind] ?? 0) + n;
  };
  const activityAttempts = new Map<string, number>();
  const localActivityTasks = new Set<string>();
  for (const e of history.events ?? []) {
    if (e.workflowExecutionStartedEventAttributes) add('start');
    else if (e.activityTaskScheduledEventAttributes) activityAttempts.set(String(e.eventId), 1);
    else if (e.activityTaskStartedEventAttributes) {
      const id = String(e.activityTaskStartedEventAttributes.scheduledEventId);
      activityAttempts.set(id, Math.max(activityAttempts.get(id) ?? 1, e.activityTaskStartedEventAttributes.attempt ?? 1));
    } else if (e.markerRecordedEventAttributes?.markerName === LOCAL_ACTIVITY_MARKER) {
      localActivityTasks.add(String(e.markerRecordedEventAttributes.workflowTaskCompletedEventId));
    } else if (e.upsertWorkflowSearchAttributesEventAttributes) {
      if (!isVersionUpsertOnly(e.upsertWorkflowSearchAttributesEventAttributes.searchAttributes?.indexedFields)) add('searchAttributeUpsert');
    } else if (e.timerStartedEventAttributes) add('timer');
    else if (e.workflowExecutionSignaledEventAttributes) add('signal');
    else if (e.workflowExecutionUpdateAcceptedEventAttributes) add('update');
    else if (e.startChildWorkflowExecutionInitiatedEventAttributes) add('childStart');
    else if (e.signalExternalWorkflowExecutionInitiatedEventAttributes) add('externalSignal');
    else if (e.workflowExecutionContinuedAsNewEventAttributes) add('continueAsNew');
  }
  const attempts = [...activityAttempts.values()].reduce((s, n) => s + n, 0);
  if (attempts > 0) add('activityAttempt', attempts);
  if (localActivityTasks.size > 0) add('localActivityTasks', localActivityTasks.size);
  return { total: Object.values(byKind).reduce((s, n) => s + n, 0), byKind };
}
