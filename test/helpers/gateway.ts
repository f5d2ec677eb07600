/** A gateway in the test's process, in front of a test stack (its relay on the port it bound). */
import type { AddressInfo } from 'node:net';
import { buildGateway, type Gateway, type GatewayOptions } from '../../src/gateway/server.js';
import type { TestStack } from './stack.js';

export interface TestGateway {
  readonly gw: Gateway;
  /** The OpenAI base URL (ending in /v1). */
  readonly base: string;
  stop(): Promise<void>;
}

export async function startGateway(stack: TestStack, opts: Partial<GatewayOptions> = {}): Promise<TestGateway> {
  let relayUrl = '';
  const gw = buildGateway({
    client: stack.client,
    catalog: stack.catalog,
    get relayUrl() {
      return relayUrl;
    },
    ...opts,
  });
  await gw.app.listen({ port: 0, host: '127.0.0.1' });
  const port = (gw.app.server.address() as AddressInfo).port;
  relayUrl = `http://127.0.0.1:${port}/switchyard/relay`;
  return { gw, base: `http://127.0.0.1:${port}/v1`, stop: () => gw.close(1_000) };
}
