/** The `switchyard` command line: each command group lives in cli/commands/ and registers itself here. */
import { Command } from 'commander';
import { reportError } from './errors.js';
import { registerBatchCommands } from './commands/batch.js';
import { registerDeferredCommands } from './commands/deferred.js';
import { registerRunsCommands } from './commands/runs.js';
import { registerCodecCommands } from './commands/codec.js';
import { registerReportCommand } from './commands/report.js';
import { registerRouterCommands } from './commands/router.js';
import { registerRoutingCommands } from './commands/routing.js';
import { registerExperimentCommands } from './commands/experiment.js';
import { registerRequestCommands } from './commands/request.js';
import { registerStackCommands } from './commands/stack.js';
import { registerHealthCommands } from './commands/health.js';
import { registerBudgetCommands } from './commands/budget.js';
import { registerGatewayCommands } from './commands/gateway.js';
import { registerKeysCommands } from './commands/keys.js';

const program = new Command();
program
  .name('switchyard')
  .description('Durable multi-model LLM router on Temporal')
  .showHelpAfterError()
  .configureOutput({ outputError: (s, write) => write(s) });

registerRequestCommands(program);
registerStackCommands(program);
registerBatchCommands(program);
registerDeferredCommands(program);
registerRunsCommands(program);
registerCodecCommands(program);
registerReportCommand(program);
registerRouterCommands(program);
registerExperimentCommands(program);
registerRoutingCommands(program);
registerHealthCommands(program);
registerBudgetCommands(program);
registerGatewayCommands(program);
registerKeysCommands(program);

program.parseAsync(process.argv).then(
  () => process.exit(typeof process.exitCode === 'number' ? process.exitCode : 0),
  (e: unknown) => process.exit(reportError(e)),
);
