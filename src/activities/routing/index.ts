/** The routing entity's activity: delivering a spend anomaly's alert (its own metric, log line and webhook). */
import type { Logger } from 'pino';
import type { AnomalyAlert } from '../../learning/routingControl.js';
import type { SwitchyardMetrics } from '../../metrics/metrics.js';
import type { RoutingEntityActivities } from '../../workflows/routing/contract.js';

/** Alert ids whose metric this worker counted (a retried webhook delivery is not a second anomaly). */
const COUNTED_MAX = 10_000;

export function createRoutingActivities(deps: { readonly log: Logger; readonly metrics?: SwitchyardMetrics | undefined }) {
  const counted = new Set<string>();
  return {
    /** A spend anomaly: one structured log line, the metric, and a POST to the webhook when configured. */
    async sendAnomalyAlert(input: { alert: AnomalyAlert; webhookUrl?: string | undefined }): Promise<void> {
      const a = input.alert;
      if (!counted.has(a.id)) {
        counted.add(a.id);
        if (counted.size > COUNTED_MAX) counted.delete(counted.values().next().value!);
        deps.metrics?.anomaly(a.scope, a.category, a.action);
      }
      deps.log.warn(
        {
          spendAnomaly: true,
          id: a.id,
          scope: a.scope,
          category: a.category,
          model: a.model,
          feature: a.feature,
          spendNanos: a.spendNanos,
          baselineNanos: a.baselineNanos,
          action: a.action,
        },
        `spend anomaly ${a.id}: ${a.scope}/${a.category} (${a.model}, ${a.feature}) spent ${a.spendNanos} nanodollars in a bucket against a baseline of ${a.baselineNanos}`,
      );
      if (!input.webhookUrl) return;
      const res = await fetch(input.webhookUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ type: 'switchyard.spend.anomaly', ...a, bucketStart: new Date(a.bucketStart).toISOString(), at: new Date(a.at).toISOString() }),
        signal: AbortSignal.timeout(10_000),
      });
      if (!res.ok) throw new Error(`anomaly alert webhook answered ${res.status}`);
    },
  } satisfies RoutingEntityActivities;
}
