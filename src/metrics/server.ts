/** Serves a worker's metrics at `/metrics` for Prometheus to scrape. */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';

export interface MetricsServer {
  /** The scrape URL, e.g. http://127.0.0.1:9464/metrics. */
  readonly url: string;
  /**
   * Stops serving. With `awaitScrapeMs`, first waits (at most that long) for one more scrape, so
   * that what this process counted last reaches Prometheus before it exits.
   */
  close(opts?: { awaitScrapeMs?: number }): Promise<void>;
}

/** The SDK's metrics text, or nothing when its exporter does not answer within a second. */
async function sdkMetrics(url: string | undefined): Promise<string> {
  if (!url) return '';
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(1_000) });
    return res.ok ? `\n${await res.text()}` : '';
  } catch {
    return '';
  }
}

/**
 * Listens on host:port (0 = any free port); rejects with the fix when the port is taken. With
 * `alsoServe`, the text of that endpoint (the SDK's own metrics) follows the registry's.
 */
export async function startMetricsServer(registry: Registry, port: number, host: string, alsoServe?: string): Promise<MetricsServer> {
  const scraped = new Set<() => void>();
  let closing = false;
  const server: Server = createServer((req, res) => {
    if (req.method !== 'GET' || (req.url ?? '/').split('?')[0] !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: metrics are at /metrics\n');
      return;
    }
    // The last scrape a stopping worker waits for: Prometheus's, begun after the stop (its
    // counters read after the last count), not a health check's.
    const last = closing && /prometheus/i.test(req.headers['user-agent'] ?? '');
    Promise.all([registry.metrics(), sdkMetrics(alsoServe)]).then(
      ([own, sdk]) => {
        const body = own + sdk;
        res.writeHead(200, { 'content-type': registry.contentType }).end(body);
        if (last) for (const done of scraped) done();
      },
      (e: unknown) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`metrics failed: ${(e as Error).message}\n`),
    );
  });
  // A scraper that stalls does not hold a connection open for long.
  server.requestTimeout = 15_000;
  server.headersTimeout = 10_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) => {
      reject(
        e.code === 'EADDRINUSE' ? new Error(`metrics port ${port} on ${host} is in use: set SWITCHYARD_METRICS_PORT to another port (0 = any free port)`) : e,
      );
    });
    server.listen(port, host, () => resolve());
  });
  const addr = server.address() as AddressInfo;
  const shown = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host;
  return {
    url: `http://${shown}:${addr.port}/metrics`,
    async close(opts = {}) {
      closing = true;
      if (opts.awaitScrapeMs !== undefined && opts.awaitScrapeMs > 0) {
        const wait = opts.awaitScrapeMs;
        await new Promise<void>((resolve) => {
          const done = (): void => {
            clearTimeout(timer);
            scraped.delete(done);
            resolve();
          };
          const timer = setTimeout(done, wait);
          scraped.add(done);
        });
      }
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}
