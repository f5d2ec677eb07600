/** The entities' alert activities (budget thresholds, spend anomalies): best effort and bounded, so a dead webhook costs at most a minute, never the entity. */
import { proxyActivities } from '@temporalio/workflow';
import type { Alert } from '../budget/book.js';
import type { AnomalyAlert } from '../learning/routingControl.js';

/**
 * What the entities call to deliver an alert, implemented in src/activities (budget/, routing/).
 * Declared here, by the workflows that call it, so that workflow code does not import the activities.
 */
export interface AlertActivities {
  sendBudgetAlert(input: { alert: Alert; webhookUrl?: string | undefined }): Promise<void>;
  sendAnomalyAlert(input: { alert: AnomalyAlert; webhookUrl?: string | undefined }): Promise<void>;
}

/** The alert activities an entity's contract declares, proxied with the alerts' bounds. */
export function alertActivities<A extends Partial<AlertActivities>>() {
  return proxyActivities<A>({
    startToCloseTimeout: '15 seconds',
    scheduleToCloseTimeout: '1 minute',
    retry: { maximumAttempts: 3, initialInterval: '2 seconds' },
  });
}
