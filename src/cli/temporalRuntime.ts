/**
 * The SDK's native runtime, for commands that run a worker or replay. Apart from shared.ts so that
 * commands that only use the client (the gateway among them) do not load @temporalio/worker.
 */
import { DefaultLogger, Runtime } from '@temporalio/worker';

/**
 * Quieter core logs; and our own signal handlers stop the stack in order, not the SDK's. With
 * `sdkMetricsAddress`, the SDK's own worker metrics (task slots, polls, latencies) are exported
 * there; the worker's /metrics serves them with its own.
 */
export function quietTemporal(sdkMetricsAddress?: string): void {
  Runtime.install({
    logger: new DefaultLogger('WARN'),
    shutdownSignals: [],
    ...(sdkMetricsAddress ? { telemetryOptions: { metrics: { prometheus: { bindAddress: sdkMetricsAddress } } } } : {}),
  });
}
