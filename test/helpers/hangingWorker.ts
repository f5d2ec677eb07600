/**
 * A Switchyard worker process that dies badly on purpose, for exactly-once tests: its settlement
 * reaches the budget entity and the ledger, then the process prints `settled` and hangs until the
 * test SIGKILLs it, so the settlement never reports back (its workflow task is lost with it).
 *
 * Run by a test: `node dist/test/helpers/hangingWorker.js`, with SWITCHYARD_TEST_CONFIG (the test
 * stack's configuration as JSON), TEMPORAL_ADDRESS and SWITCHYARD_WORKFLOW_BUNDLE.
 */
import { DefaultLogger, Runtime } from '@temporalio/worker';
import type { SwitchyardConfig } from '../../src/config/config.js';
import type { ActivityParts } from '../../src/workers/activities.js';
import { createLogger } from '../../src/util/logger.js';
import { createSwitchyardWorker } from '../../src/workers/createWorker.js';

const need = (name: string): string => {
  const v = process.env[name];
  if (!v) throw new Error(`hangingWorker: set ${name}`);
  return v;
};

Runtime.install({ logger: new DefaultLogger('ERROR') });
const config = JSON.parse(need('SWITCHYARD_TEST_CONFIG')) as SwitchyardConfig;
const sw = await createSwitchyardWorker({
  config,
  address: need('TEMPORAL_ADDRESS'),
  workflowBundlePath: need('SWITCHYARD_WORKFLOW_BUNDLE'),
  log: createLogger('error'),
  activityOverrides: (real: ActivityParts) => ({
    recordSpend: async (input: Parameters<ActivityParts['recordSpend']>[0]) => {
      await real.recordSpend(input);
      process.stdout.write('settled\n');
      await new Promise<never>(() => undefined);
    },
  }),
});
process.stdout.write('ready\n');
await sw.run();
