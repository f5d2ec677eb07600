/** How the command line reports a failure, and its exit code: shared by the full CLI and the gateway's own entry. */
import { ValidationError } from '../util/validation.js';
import { BudgetNotFoundError, RequestFailedError } from '../client/client.js';
import { ExperimentNotFoundError } from '../client/learningClient.js';
import { DEFAULT_ADDRESS } from './shared.js';

export function reportError(e: unknown): number {
  if (e instanceof ValidationError) {
    process.stderr.write(`error: ${e.source} is invalid:\n${e.fields.map((f) => `  - ${f}`).join('\n')}\n`);
    return 2;
  }
  if (e instanceof BudgetNotFoundError || e instanceof ExperimentNotFoundError) {
    process.stderr.write(`error: ${e.message}\n`);
    return 1;
  }
  if (e instanceof RequestFailedError) {
    process.stderr.write(`request ${e.workflowId} failed (${e.failureType ?? 'failed'}): ${e.message}\n`);
    for (const a of e.details?.attempts ?? [])
      process.stderr.write(`  ${a.attemptId} ${a.model}: ${a.outcome}${a.status ? ` ${a.status}` : ''} -> ${a.decision ?? ''}\n`);
    return 1;
  }
  const err = e as Error;
  if (/Unknown encoding: binary\/encrypted/.test(`${err?.message ?? ''} ${(err?.cause as Error | undefined)?.message ?? ''}`)) {
    process.stderr.write(
      "error: these runs' payloads are encrypted and this process has no key: set SWITCHYARD_ENCRYPTION_KEY and SWITCHYARD_ENCRYPTION_KEY_ID as the workers have them (docs/security.md). Every client needs the key: one without it also sends its own requests in plaintext.\n",
    );
    return 1;
  }
  if (/ECONNREFUSED|Failed to connect|connect error|transport error/i.test(err?.message ?? '')) {
    const tlsVars = [
      'TEMPORAL_TLS',
      'TEMPORAL_TLS_CERT',
      'TEMPORAL_TLS_CA',
      'TEMPORAL_TLS_CLIENT_CERT_PATH',
      'TEMPORAL_TLS_SERVER_CA_CERT_PATH',
      'TEMPORAL_API_KEY',
      'TEMPORAL_PROFILE',
    ].filter((k) => (process.env[k] ?? '') !== '');
    const address = process.env.TEMPORAL_ADDRESS ?? DEFAULT_ADDRESS;
    const hint = tlsVars.length
      ? `The connection to ${address} uses TLS (${tlsVars.join(', ')} set): check that the CA (TEMPORAL_TLS_CA) signed the server's certificate, that TEMPORAL_TLS_SERVER_NAME matches it, that the cluster accepts your client certificate (TEMPORAL_TLS_CERT, TEMPORAL_TLS_KEY) or API key, and that the address is right; a server without TLS needs TEMPORAL_TLS=false (an API key turns TLS on).`
      : 'Start the local stack with `switchyard up`, or set TEMPORAL_ADDRESS to your cluster.';
    process.stderr.write(`error: cannot reach Temporal at ${address} (${err.message}).\n${hint}\n`);
    return 1;
  }
  // SDK errors such as "Failed to start Workflow" carry the server's reason as their cause.
  const cause = (err?.cause as Error | undefined)?.message;
  process.stderr.write(`error: ${err?.message ?? String(e)}${cause && cause !== err?.message ? ` (${cause})` : ''}\n`);
  return 1;
}
