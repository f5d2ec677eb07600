/**
 * When the worker cannot learn whether its routing policy is current, it routes by its last copy
 * and counts it (switchyard_policy_stale_total), so an operator can see that a control change may
 * not be in force. The server here is a closed port: nothing to mock.
 */
import { describe, expect, it } from 'vitest';
import { Client, Connection } from '@temporalio/client';
import { PolicyCache, type StaleReason } from '../../src/learning/worker/policyCache.js';
import { SwitchyardMetrics } from '../../src/metrics/metrics.js';
import { createLogger } from '../../src/util/logger.js';

describe('routing policy that cannot be checked', () => {
  it('is counted by reason, and the last copy (none here) routes', async () => {
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
    expect(seen).toEqual(['epoch_unreadable', 'query_failed']);
    const text = await metrics.registry.metrics();
    expect(text).toContain('switchyard_policy_stale_total{reason="epoch_unreadable"} 1');
    expect(text).toContain('switchyard_policy_stale_total{reason="query_failed"} 1');
  }, 20_000);
});
