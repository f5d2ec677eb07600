/** The entities' alert activities (budget thresholds, spend anomalies): best effort and bounded, so a dead webhook costs at most a minute, never the entity. */
import { proxyActivities } from '@temporalio/workflow';
import type { Activities } from '../activities/index.js';

export function alertActivities() {
  return proxyActivities<Activities>({
    startToCloseTimeout: '15 seconds',
    scheduleToCloseTimeout: '1 minute',
    retry: { maximumAttempts: 3, initialInterval: '2 seconds' },
  });
}
