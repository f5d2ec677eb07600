/**
 * docker-compose.yml, checked without a Docker engine (there is none on these machines): Debian's
 * docker-compose validates it (`config`), and the parsed file is checked for what `config` does
 * not: every file it mounts exists, every service it names is defined, images are pinned, the
 * workers share the PostgreSQL ledger and are Prometheus's targets, and the setup creates the
 * search attributes and dynamic config the workers need.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { SEARCH_ATTRIBUTES } from '../../src/workflows/request/contract.js';
import { DEV_SERVER_DYNAMIC_CONFIG } from '../../src/temporal/devServer.js';
import { GATEWAY_NODE_OPTIONS } from '../../src/gateway/server.js';

const root = join(import.meta.dirname, '..', '..');

interface Service {
  image?: string;
  command?: string[];
  build?: unknown;
  profiles?: string[];
  depends_on?: Record<string, { condition: string }> | string[];
  volumes?: Array<string | { type: string; source: string; target: string }>;
  environment?: Record<string, string | null>;
  healthcheck?: unknown;
}

function composeConfig(env: NodeJS.ProcessEnv = { SWITCHYARD_ADMIN_KEY: 'compose-test-admin-key' }): { services: Record<string, Service> } {
  let out: string;
  try {
    out = execFileSync('docker-compose', ['-f', join(root, 'docker-compose.yml'), 'config'], {
      encoding: 'utf8',
      stdio: 'pipe',
      cwd: root,
      env: { ...process.env, OPENAI_API_KEY: '', SWITCHYARD_ADMIN_KEY: '', ...env },
    });
  } catch (e) {
    const err = e as { code?: string; stderr?: string };
    if (err.code === 'ENOENT')
      throw new Error(
        'docker-compose is not installed: `apt-get install docker-compose` (Debian; scripts/test-tools.sh, run by npm test, does it; no engine needed for `config`)',
      );
    throw new Error(`docker-compose config failed: ${err.stderr ?? String(e)}`);
  }
  return parse(out) as { services: Record<string, Service> };
}

describe('docker-compose.yml', () => {
  const { services } = composeConfig();
  const names = Object.keys(services);

  it('is valid, and every service it depends on is defined', () => {
    for (const [name, s] of Object.entries(services)) {
      const deps = Array.isArray(s.depends_on) ? s.depends_on : Object.keys(s.depends_on ?? {});
      for (const d of deps) expect(names, `${name} depends on ${d}`).toContain(d);
    }
    expect(names).toEqual(
      expect.arrayContaining([
        'postgresql',
        'temporal-schema',
        'temporal',
        'temporal-setup',
        'temporal-ui',
        'worker-1',
        'worker-2',
        'gateway',
        'simulator',
        'prometheus',
        'grafana',
      ]),
    );
    expect(services.simulator?.profiles).toEqual(['demo']);
  });

  it('mounts only files that exist in the repository, and pins every image', () => {
    for (const [name, s] of Object.entries(services)) {
      for (const v of s.volumes ?? []) {
        const source = typeof v === 'string' ? (v.split(':')[0] ?? '') : v.type === 'bind' ? v.source : '';
        if (!source || !(isAbsolute(source) || source.startsWith('.'))) continue;
        expect(existsSync(resolve(root, source)), `${name} mounts ${source}`).toBe(true);
      }
      if (s.image) expect(s.image, name).toMatch(/:(?!latest$)[\w.-]+$/);
      else expect(s.build, `${name} has neither image nor build`).toBeDefined();
    }
    expect(existsSync(join(root, 'Dockerfile'))).toBe(true);
  });

  it('two workers share the PostgreSQL ledger, serve metrics, and are what Prometheus scrapes', () => {
    for (const w of ['worker-1', 'worker-2']) {
      expect(services[w]?.environment?.SWITCHYARD_LEDGER_URL).toMatch(/^postgres:\/\/.*@postgresql:5432\/switchyard$/);
      expect(services[w]?.environment?.SWITCHYARD_METRICS_PORT).toBe('9464');
      expect(services[w]?.healthcheck).toBeDefined();
    }
    const prom = parse(readFileSync(join(root, 'monitoring', 'prometheus', 'prometheus.yml'), 'utf8')) as {
      scrape_configs: Array<{ job_name: string; static_configs: Array<{ targets: string[] }> }>;
    };
    const targets = prom.scrape_configs.flatMap((c) => c.static_configs.flatMap((t) => t.targets));
    expect(targets).toEqual(expect.arrayContaining(['worker-1:9464', 'worker-2:9464', 'temporal:8000']));
    expect(readFileSync(join(root, 'deploy', 'postgres', 'init.sql'), 'utf8')).toMatch(/CREATE DATABASE switchyard;/);
  });

  it("the gateway serves beyond loopback with the admin key from the environment (refused without one), on the workers' stack", () => {
    const g = services.gateway;
    expect(g?.command).toEqual(expect.arrayContaining(['gateway', '--host', '0.0.0.0', '--relay-url', 'http://gateway:4000/switchyard/relay']));
    expect(g?.environment?.SWITCHYARD_ADMIN_KEY).toBe('compose-test-admin-key');
    expect(g?.environment?.TEMPORAL_ADDRESS).toBe(services['worker-1']?.environment?.TEMPORAL_ADDRESS);
    expect(g?.environment?.SWITCHYARD_TASK_QUEUE).toBe(services['worker-1']?.environment?.SWITCHYARD_TASK_QUEUE);
    expect(g?.healthcheck).toBeDefined();
    expect(g?.environment?.NODE_OPTIONS).toBe(GATEWAY_NODE_OPTIONS);
    expect(() => composeConfig({ SWITCHYARD_ADMIN_KEY: '' })).toThrow(/SWITCHYARD_ADMIN_KEY/);
  });

  it('the setup creates every search attribute the workers check for, and the dynamic config matches the dev server', () => {
    const setup = readFileSync(join(root, 'deploy', 'temporal', 'setup.sh'), 'utf8');
    const kind = (t: string): string => ({ KEYWORD: 'Keyword', INT: 'Int', DOUBLE: 'Double' })[t] ?? t;
    for (const k of SEARCH_ATTRIBUTES) expect(setup).toContain(`${k.name}:${kind(k.type)}`);
    const dc = parse(readFileSync(join(root, 'deploy', 'temporal', 'dynamicconfig.yaml'), 'utf8')) as Record<string, Array<{ value: unknown }>>;
    for (const kv of DEV_SERVER_DYNAMIC_CONFIG) {
      const [key, value] = kv.split('=');
      expect(String(dc[key ?? '']?.[0]?.value), key).toBe(value);
    }
    expect(dc['frontend.enableExecuteMultiOperation']?.[0]?.value).toBe(true);
  });
});
