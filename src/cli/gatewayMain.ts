/**
 * `switchyard gateway` on its own: the gateway loads only what it serves with (the client, the
 * HTTP framework, the key registry), not the worker, the router tools or the tokenizer that other
 * commands bring (about 50 MB less resident memory: BENCHMARKS.md "Gateway"). bin/switchyard.js
 * takes this entry when the first argument is `gateway`; its options and help are the full CLI's.
 */
import { Command } from 'commander';
import { registerGatewayCommands } from './commands/gateway.js';
import { reportError } from './errors.js';

const program = new Command();
program
  .name('switchyard')
  .showHelpAfterError()
  .configureOutput({ outputError: (s, write) => write(s) });
registerGatewayCommands(program);

program.parseAsync(process.argv).then(
  () => process.exit(typeof process.exitCode === 'number' ? process.exitCode : 0),
  (e: unknown) => process.exit(reportError(e)),
);
