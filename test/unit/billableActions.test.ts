/**
 * The action counter's rules on hand-built histories (the integration test counts real ones).
 */
import { temporal } from '@temporalio/proto';
import { describe, expect, it } from 'vitest';
import { billableActions } from '../../src/temporal/billableActions.js';

const history = (events: Array<Record<string, unknown>>) => temporal.api.history.v1.History.fromObject({ events });

const payload = { metadata: { encoding: Buffer.from('json/plain').toString('base64') }, data: Buffer.from('"x"').toString('base64') };
let id = 0;
const ev = (attrs: Record<string, unknown>) => ({ eventId: ++id, ...attrs });

describe('billableActions', () => {
  it("exempts the SDK's TemporalChangeVersion upsert, counts every other upsert once", () => {
    const h = history([
      ev({ workflowExecutionStartedEventAttributes: {} }),
      ev({ upsertWorkflowSearchAttributesEventAttributes: { searchAttributes: { indexedFields: { TemporalChangeVersion: payload } } } }),
      ev({ upsertWorkflowSearchAttributesEventAttributes: { searchAttributes: { indexedFields: { LlmOutcome: payload, LlmModel: payload } } } }),
      ev({ upsertWorkflowSearchAttributesEventAttributes: { searchAttributes: { indexedFields: { TemporalChangeVersion: payload, LlmOutcome: payload } } } }),
    ]);
    expect(billableActions(h)).toEqual({ total: 3, byKind: { start: 1, searchAttributeUpsert: 2 } });
  });

  it('counts each activity attempt, and the local activities of one workflow task as one', () => {
    const scheduled = ev({ activityTaskScheduledEventAttributes: {} });
    const h = history([
      ev({ workflowExecutionStartedEventAttributes: {} }),
      scheduled,
      ev({ activityTaskStartedEventAttributes: { scheduledEventId: scheduled.eventId, attempt: 3 } }),
      ev({ markerRecordedEventAttributes: { markerName: 'core_local_activity', workflowTaskCompletedEventId: 7 } }),
      ev({ markerRecordedEventAttributes: { markerName: 'core_local_activity', workflowTaskCompletedEventId: 7 } }),
      ev({ markerRecordedEventAttributes: { markerName: 'core_local_activity', workflowTaskCompletedEventId: 9 } }),
      ev({ markerRecordedEventAttributes: { markerName: 'core_patch' } }),
      ev({ timerStartedEventAttributes: {} }),
    ]);
    expect(billableActions(h)).toEqual({ total: 7, byKind: { start: 1, activityAttempt: 3, localActivityTasks: 2, timer: 1 } });
  });
});
