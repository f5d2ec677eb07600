/**
 * What a worker reports about state it shares with other workers. When it cannot learn whether its
 * routing policy is current, it routes by its last copy and counts it
 * (switchyard_policy_stale_total): a control change may not be in force. The ledger backlog gauges
 * report the outbox as the server sees it, not what this worker happens to know. The server in the
 * first test is a closed port: nothing to mock.
 */
import { describe, expect, it } from 'vitest';
import { Client, Connection } from '@temporalio/client';
import { PolicyCache, type StaleReason } from '../../src/learning/worker/policyCache.js';
import { SwitchyardMetrics } from '../../src/metrics/metrics.js';
import { createLogger } from '../../src/util/logger.js';

describe('routing policy that cannot be checked', () => {
  it('is counted once per request, by its first reason, and the last copy (none here) routes', async () => {
    const connection = Connection.lazy({ address: '127.0.0.1:1' });
    const client = new Client({ connection });
    const metrics = new SwitchyardMetrics();
    const seen: StaleReason[] = [];
    const cache = new PolicyCache(client, 'stale-q', 5_000, createLogger('silent'), (r) => {
      seen.push(r);
      metrics.policyStale(r);
    });
    try {
      expect(await cache.view()).toBeUndefined();
    } finally {
      await connection.close();
    }
    // The epoch could not be read, nor (after it) the policy: one request, counted once.
    expect(seen).toEqual(['epoch_unreadable']);
    const text = await metrics.registry.metrics();
    expect(text).toContain('switchyard_policy_stale_total{reason="epoch_unreadable"} 1');
    expect(text).not.toContain('reason="query_failed"');
  }, 20_000);
});

describe('the ledger backlog gauges', () => {
  it('report the outbox as the server sees it: a line this worker deferred and another wrote is not lag here', async () => {
    const gauge = async (m: SwitchyardMetrics, name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(await m.registry.metrics())?.[1]);
    const written = new SwitchyardMetrics({ ledgerBacklog: async () => ({ pending: 0, oldestDeferredAt: undefined }) });
    written.ledgerDeferred('k1', Date.now() - 120_000);
    expect(await gauge(written, 'switchyard_ledger_lag_seconds')).toBe(0);
    expect(await gauge(written, 'switchyard_ledger_outbox_pending')).toBe(0);
    const waiting = new SwitchyardMetrics({ ledgerBacklog: async () => ({ pending: 3, oldestDeferredAt: Date.now() - 40_000 }) });
    expect(await gauge(waiting, 'switchyard_ledger_lag_seconds')).toBeCloseTo(40, 0);
    expect(await gauge(waiting, 'switchyard_ledger_outbox_pending')).toBe(3);
  });

  it('fall back to what this worker knows when the server cannot be asked', async () => {
    const metrics = new SwitchyardMetrics({ ledgerBacklog: () => Promise.reject(new Error('unavailable')) });
    metrics.ledgerDeferred('k1', Date.now() - 30_000);
    const text = await metrics.registry.metrics();
    expect(Number(/^switchyard_ledger_lag_seconds (\S+)$/m.exec(text)?.[1])).toBeCloseTo(30, 0);
    expect(text).toMatch(/^switchyard_ledger_outbox_pending 1$/m);
  });
});
