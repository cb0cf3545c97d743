/**
 * `npm run chaos [-- --soak-calls N --slots N --seed N]`: every fault scenario, then a soak with random
 * faults. A tool of this repository, not part of the package (run from source through tsx).
 */
import { Command } from 'commander';
import { configFrom, withCommon, type Opts } from '../../src/cli/cli-options.js';
import { toError } from '../../src/shared/errors.js';
import { createLogger } from '../../src/shared/logger.js';
import { runChaos } from './chaos.js';

const program = withCommon(new Command('chaos'))
  .description('fault scenarios and a soak with random faults; prints calls, lost, hung, leaked and recovery time per scenario')
  .option('--soak-calls <n>', 'calls of the soak', '50000')
  .option('--slots <n>', 'slots of the soak (over two worker processes)', '32')
  .option('--seed <n>', 'seed of the soak fault plan (default random)')
  .option('--memory-calls <n>', 'calls of the memory run (workers joining and leaving; 0 skips it)', '100000')
  .option('--memory-only', 'run only the memory run')
  .action(async (o: Opts) => {
    const config = configFrom(o);
    const logger = createLogger({ level: String(o['logLevel'] ?? 'warn'), pretty: Boolean(o['pretty']), name: 'slotq-chaos' });
    const rows = await runChaos({ soakCalls: Number(o['soakCalls']), slots: Number(o['slots']), logger, ...(o['seed'] ? { seed: Number(o['seed']) } : {}), memoryCalls: Number(o['memoryCalls']), memoryOnly: Boolean(o['memoryOnly']), ...(config.redisUrl ? { redisUrl: config.redisUrl } : {}) });
    process.exitCode = rows.every((r) => r.lost === 0 && r.hung === 0 && r.leaked === 0 && !r.error) ? 0 : 1;
  });

program.parseAsync().catch((err: unknown) => {
  console.error(`chaos: ${toError(err).message}`);
  process.exit(1);
});
