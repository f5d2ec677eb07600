/** CLI commands for payload encryption: make a key, run the remote codec endpoint for the UI and CLI. */
import { randomBytes } from 'node:crypto';
import { type Command, InvalidArgumentError } from 'commander';
import { CodecServer } from '../../security/codecServer.js';
import { signInUrl } from '../../security/uiSignIn.js';
import { config, DEFAULT_ADDRESS, int, untilSignal } from '../shared.js';
import { findStackRecord } from '../stackRecord.js';

export function registerCodecCommands(program: Command): void {
  program
    .command('ui')
    .description('print the Temporal UI of the local stack this shell reaches; with encryption on, a new one-time sign-in link (10 minutes)')
    .action(() => {
      const cfg = config();
      const address = cfg.temporalAddress ?? DEFAULT_ADDRESS;
      const stack = findStackRecord(address);
      if (!stack?.uiUrl) {
        throw new InvalidArgumentError(
          `no \`switchyard up\` runs a UI at ${address} on this machine (as this user): start one, or point TEMPORAL_ADDRESS at it; a cluster's UI is wherever its operators serve it`,
        );
      }
      process.stdout.write(`${stack.uiSignInSecret ? signInUrl(stack.uiUrl, stack.uiSignInSecret) : stack.uiUrl}\n`);
    });
  const codec = program.command('codec').description('payload encryption: keygen, and the codec endpoint the Temporal UI and CLI decode through');
  codec
    .command('keygen')
    .description('print a new random AES-256 key (base64) for SWITCHYARD_ENCRYPTION_KEY')
    .action(() => {
      process.stdout.write(`${randomBytes(32).toString('base64')}\n`);
    });
  codec
    .command('server')
    .description('serve POST /decode and /encode for the Temporal UI (--ui-codec-endpoint) and `temporal --codec-endpoint`')
    .option('--port <n>', 'port (0 picks one)', int('--port'), 8888)
    .option('--host <ip>', 'address to bind; keep it private and put your SSO proxy in front for a team', '127.0.0.1')
    .option('--ui-origin <urls...>', "browser origins allowed to call it (the Temporal UI's)", ['http://localhost:8233', 'http://127.0.0.1:8233'])
    .action(async (o: { port: number; host: string; uiOrigin: string[] }) => {
      const cfg = config();
      const c = cfg.access.codec;
      if (!c) throw new Error("payload encryption is off: set SWITCHYARD_ENCRYPTION_KEY (and SWITCHYARD_ENCRYPTION_KEY_ID) to the workers' key first");
      const token = process.env.SWITCHYARD_CODEC_TOKEN;
      const loopback = ['127.0.0.1', '::1', 'localhost'].includes(o.host);
      if (!loopback && !token) {
        throw new InvalidArgumentError(
          `--host ${o.host} would let anyone who reaches the port decode every payload: set SWITCHYARD_CODEC_TOKEN (and put an SSO proxy that adds it in front of the UI), or bind to 127.0.0.1`,
        );
      }
      const server = new CodecServer({ codec: c, allowedOrigins: o.uiOrigin, namespace: cfg.namespace, ...(token ? { token } : {}) });
      const url = await server.start(o.port, o.host);
      process.stderr.write(
        `codec endpoint ${url} (namespace ${cfg.namespace}; origins ${o.uiOrigin.join(', ')}; ${token ? 'needs Authorization: Bearer $SWITCHYARD_CODEC_TOKEN' : 'no token: set SWITCHYARD_CODEC_TOKEN to require one'})\n` +
          `  UI:  temporal server start-dev --ui-codec-endpoint ${url}   (or the UI's Data Encoder setting)\n` +
          `  CLI: temporal workflow show --workflow-id ID --codec-endpoint ${url}${token ? ' --codec-auth "Bearer $SWITCHYARD_CODEC_TOKEN"' : ''}\nCtrl-C to stop\n`,
      );
      await untilSignal(() => server.stop());
    });
}
