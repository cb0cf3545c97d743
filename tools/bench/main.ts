/**
 * `npm run bench [-- --iterations N --out FILE]`: slotq end to end against plain docker exec.
 * A tool of this repository, not part of the package (run from source through tsx).
 */
import { Command } from 'commander';
import { configFrom, withCommon, type Opts } from '../../src/cli/cli-options.js';
import { toError } from '../../src/shared/errors.js';
import { createLogger } from '../../src/shared/logger.js';
import { DEFAULT_RESULTS_FILE, runBench } from './bench.js';
import { readFile, writeFile } from 'node:fs/promises';
import { benchImages } from './images.js';
import { measureRuntimes, renderRuntimes } from './runtimes.js';
import { runScaleSection } from './scale-run.js';

const program = withCommon(new Command('bench'))
  .description(`benchmark slotq end to end against plain docker exec; writes ${DEFAULT_RESULTS_FILE}`)
  .option('--iterations <n>', 'one-at-a-time calls to time', '500')
  .option('--out <file>', 'results file', DEFAULT_RESULTS_FILE)
  .option('--no-sections', 'only the core comparison: leave out the runtimes (runc vs runsc) and per-trajectory images sections')
  .option('--scale [slots]', 'only the scale curve (scale.ts): one worker at each slot count (default 8,32,128,256), then two workers of 128; merged into the results file under scale')
  .action(async (o: Opts) => {
    const config = configFrom(o);
    const logger = createLogger({ level: String(o['logLevel'] ?? 'warn'), pretty: Boolean(o['pretty']), name: 'slotq-bench' });
    if (o['scale'] !== undefined) {
      const slots = typeof o['scale'] === 'string' ? o['scale'].split(',').map(Number) : undefined;
      await runScaleSection({ redisUrl: config.redisUrl ?? process.env['REDIS_URL'] ?? 'redis://127.0.0.1:6379', out: String(o['out']), logger, ...(slots ? { slots } : {}) });
      return;
    }
    await runBench({ iterations: Number(o['iterations']), out: String(o['out']), logger, ...(config.redisUrl ? { redisUrl: config.redisUrl } : {}) });
    if (o['sections'] === false) return;
    // The same run goes on with the isolation tiers and per-trajectory images, merged into the same file.
    const redisUrl = config.redisUrl ?? process.env['REDIS_URL'] ?? 'redis://127.0.0.1:6379';
    const runtimes = await measureRuntimes({ redisUrl, logger });
    console.log(renderRuntimes(runtimes));
    const images = await benchImages({ redisUrl });
    console.log(`images: ${JSON.stringify(images)}`);
    const out = String(o['out']);
    const existing = JSON.parse(await readFile(out, 'utf8')) as Record<string, unknown>;
    await writeFile(out, `${JSON.stringify({ ...existing, runtimes: { timestamp: new Date().toISOString(), ...runtimes }, images }, null, 2)}\n`);
  });

program.parseAsync().catch((err: unknown) => {
  console.error(`bench: ${toError(err).message}`);
  process.exit(1);
});
