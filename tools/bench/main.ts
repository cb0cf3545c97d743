/**
 * `npm run bench [-- --iterations N --out FILE]`: slotq end to end against plain docker exec.
 * A tool of this repository, not part of the package (run from source through tsx).
 */
import { Command } from 'commander';
import { configFrom, withCommon, type Opts } from '../../src/cli/cli-options.js';
import { toError } from '../../src/shared/errors.js';
import { createLogger } from '../../src/shared/logger.js';
import { DEFAULT_RESULTS_FILE, runBench } from './bench.js';

const program = withCommon(new Command('bench'))
  .description(`benchmark slotq end to end against plain docker exec; writes ${DEFAULT_RESULTS_FILE}`)
  .option('--iterations <n>', 'one-at-a-time calls to time', '500')
  .option('--out <file>', 'results file', DEFAULT_RESULTS_FILE)
  .action(async (o: Opts) => {
    const config = configFrom(o);
    const logger = createLogger({ level: String(o['logLevel'] ?? 'warn'), pretty: Boolean(o['pretty']), name: 'slotq-bench' });
    await runBench({ iterations: Number(o['iterations']), out: String(o['out']), logger, ...(config.redisUrl ? { redisUrl: config.redisUrl } : {}) });
  });

program.parseAsync().catch((err: unknown) => {
  console.error(`bench: ${toError(err).message}`);
  process.exit(1);
});
