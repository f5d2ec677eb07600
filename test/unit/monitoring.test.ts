/**
 * The alert rules and the Grafana dashboard, checked with Prometheus's own promtool: the rules
 * parse and their unit tests (monitoring/prometheus/alerts.test.yml: synthetic series, expected
 * alerts) pass; every dashboard query parses; every metric they name is one a worker exports.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SwitchyardMetrics } from '../../src/metrics/metrics.js';
import { createRoutingActivities } from '../../src/activities/routing/index.js';
import { createLogger } from '../../src/util/logger.js';

const root = join(import.meta.dirname, '..', '..');
const rules = join(root, 'monitoring', 'prometheus', 'alerts.yml');
const dashboard = JSON.parse(readFileSync(join(root, 'monitoring', 'grafana', 'dashboards', 'switchyard.json'), 'utf8')) as {
  panels: Array<{ title: string; targets: Array<{ expr: string }> }>;
};
const exprs = dashboard.panels.flatMap((p) => p.targets.map((t) => t.expr));

function promtool(args: string[]): string {
  try {
    execFileSync('promtool', ['--version'], { stdio: 'pipe' });
  } catch {
    throw new Error('promtool is not installed: `apt-get install prometheus` (Debian; scripts/test-tools.sh, run by npm test, does it)');
  }
  return execFileSync('promtool', args, { encoding: 'utf8', stdio: 'pipe' });
}

/** Metric names a query uses (identifiers followed by a selector, a range, or `)`/space). */
function metricNames(expr: string): string[] {
  return [...expr.matchAll(/\b(llm_[a-z_]+|switchyard_[a-z_]+)\b/g)].map((m) => m[1] ?? '');
}

describe('monitoring', () => {
  it('the alert rules parse, and their unit tests pass (budget at 80% and 100%, a spend burst, an open circuit, an error rate)', () => {
    expect(promtool(['check', 'rules', rules])).toMatch(/SUCCESS: 7 rules found/);
    expect(promtool(['test', 'rules', join(root, 'monitoring', 'prometheus', 'alerts.test.yml')])).toMatch(/SUCCESS/);
  });

  it("the dashboard holds the seed's three queries verbatim, and every query parses", () => {
    for (const seed of [
      'sum(rate(llm_model_cost_dollars[1h])) by (tier) * 3600',
      'avg(llm_model_quality_score) by (model)\n/\n(sum(rate(llm_model_cost_dollars[1h])) by (model) * 3600 + 0.001)',
      'sum(rate(llm_routing_decisions_total[1h])) by (from_tier, to_tier)',
    ])
      expect(exprs).toContain(seed);
    const dir = mkdtempSync(join(tmpdir(), 'switchyard-dash-'));
    try {
      const file = join(dir, 'panels.yml');
      writeFileSync(
        file,
        `groups:\n  - name: panels\n    rules:\n${exprs.map((e, i) => `      - record: panel_${i}\n        expr: ${JSON.stringify(e)}\n`).join('')}`,
      );
      expect(promtool(['check', 'rules', file])).toMatch(new RegExp(`SUCCESS: ${exprs.length} rules found`));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('every metric the dashboard and the rules name is exported by a worker', async () => {
    const m = new SwitchyardMetrics({ budgets: async () => [], circuits: async () => ({ open: [], halfOpen: [] }) });
    const exported = new Set(
      (await m.registry.getMetricsAsJSON()).flatMap((x) =>
        String(x.type) === 'histogram' ? [`${x.name}_bucket`, `${x.name}_sum`, `${x.name}_count`] : [x.name],
      ),
    );
    const named = new Set([...exprs, readFileSync(rules, 'utf8')].flatMap(metricNames));
    // The seed's verbatim quality query names the histogram itself, which has no such series (see its panel).
    named.delete('llm_model_quality_score');
    expect([...named].filter((n) => !exported.has(n))).toEqual([]);
    expect(named.size).toBeGreaterThanOrEqual(8);
  });

  it("a run's end is counted once on a worker, however often its final workflow task runs", async () => {
    const m = new SwitchyardMetrics();
    const ended = { routing: [{ fromTier: 'economy', toTier: 'standard', reason: 'fallback' as const }], quality: [{ model: 'gpt-4o-mini', score: 0.9 }] };
    m.requestEnded('run-1', ended);
    m.requestEnded('run-1', ended);
    m.requestEnded('run-2', ended);
    const text = await m.registry.metrics();
    expect(text).toMatch(/^llm_routing_decisions_total\{from_tier="economy",to_tier="standard",reason="fallback"\} 2$/m);
    expect(text).toMatch(/^llm_model_quality_score_count\{model="gpt-4o-mini"\} 2$/m);
  });

  it('a spend anomaly is counted once, however often its webhook delivery is retried (issue 21, item 11)', async () => {
    const hook = createServer((_req, res) => res.writeHead(503).end());
    await new Promise<void>((r) => hook.listen(0, '127.0.0.1', r));
    try {
      const m = new SwitchyardMetrics();
      const acts = createRoutingActivities({ log: createLogger('silent'), metrics: m });
      const alert = {
        id: 'anomaly-7',
        key: 's|standard|*|*',
        bucketStart: 0,
        spendNanos: 10,
        baselineNanos: 1,
        sdNanos: 1,
        at: 0,
        scope: 's',
        category: 'standard',
        model: '*',
        feature: '*',
        action: 'pause' as const,
      };
      const url = `http://127.0.0.1:${(hook.address() as AddressInfo).port}/`;
      for (let attempt = 0; attempt < 3; attempt++) await expect(acts.sendAnomalyAlert({ alert, webhookUrl: url })).rejects.toThrow(/answered 503/);
      await acts.sendAnomalyAlert({ alert: { ...alert, id: 'anomaly-8' } });
      const text = await m.registry.metrics();
      expect(text).toMatch(/^switchyard_spend_anomalies_total\{scope="s",category="standard",action="pause"\} 2$/m);
    } finally {
      hook.close();
    }
  });
});
