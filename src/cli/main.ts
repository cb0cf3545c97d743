import { Command, Option } from 'commander';
import { loadConfig, type SlotqOptions } from '../shared/config.js';
import { createLogger } from '../shared/logger.js';
import { toError } from '../shared/errors.js';
import { SlotWorker } from '../worker/slot-worker.js';
import { purge, statusTable } from './admin.js';
import { runDemo, summaryTable } from './demo.js';

type Opts = Record<string, string | boolean | undefined>;

/** Options shared by every command, with their env variables (contract §8). */
function withCommon(cmd: Command): Command {
  return cmd
    .addOption(new Option('--redis-url <url>', 'Redis URL (rediss:// and passwords work)').env('REDIS_URL'))
    .addOption(new Option('--prefix <prefix>', 'key and queue prefix').env('SLOTQ_PREFIX'))
    .addOption(new Option('--log-level <level>', 'fatal|error|warn|info|debug|trace|silent').env('SLOTQ_LOG_LEVEL'))
    .option('--pretty', 'human-readable logs instead of JSON', false);
}

function configFrom(o: Opts): SlotqOptions {
  const pick: { -readonly [K in keyof SlotqOptions]: SlotqOptions[K] } = {};
  if (o['redisUrl']) pick.redisUrl = String(o['redisUrl']);
  if (o['prefix']) pick.prefix = String(o['prefix']);
  if (o['logLevel']) pick.logLevel = String(o['logLevel']) as SlotqOptions['logLevel'];
  if (o['slots']) pick.slots = Number(o['slots']);
  if (o['image']) pick.image = String(o['image']);
  return pick;
}

const program = new Command('slotq').description('Tool-execution layer for agent RL training: isolated Docker slots driven through Redis/BullMQ').showHelpAfterError();

withCommon(program.command('worker'))
  .description('run a SlotWorker (its container slots) until SIGINT/SIGTERM')
  .addOption(new Option('--slots <n>', 'slots (containers) this worker owns').env('SLOTQ_SLOTS'))
  .addOption(new Option('--image <image>', 'sandbox image').env('SLOTQ_IMAGE'))
  .action(async (o: Opts) => {
    const config = configFrom(o);
    const logger = createLogger({ level: loadConfig(config).logLevel, pretty: Boolean(o['pretty']), name: 'slotq-worker' });
    const worker = new SlotWorker({ ...config, logger });
    let stopping = false;
    const stop = (signal: string): void => {
      if (stopping) return;
      stopping = true;
      logger.info({ signal }, 'stopping: draining calls in flight');
      worker.stop().then(
        () => process.exit(0),
        (err: unknown) => (logger.error({ err: toError(err).message }, 'stop failed'), process.exit(1)),
      );
    };
    process.on('SIGINT', () => stop('SIGINT'));
    process.on('SIGTERM', () => stop('SIGTERM'));
    await worker.start();
  });

withCommon(program.command('demo'))
  .description('run a realistic training-loop workload against a local worker and print a summary')
  .option('--trajectories <n>', 'concurrent agent trajectories', '16')
  .addOption(new Option('--slots <n>', 'slots of the demo worker').default('4').env('SLOTQ_SLOTS'))
  .action(async (o: Opts) => {
    const config = configFrom(o);
    const logger = createLogger({ level: String(o['logLevel'] ?? 'warn'), pretty: Boolean(o['pretty']), name: 'slotq-demo' });
    const summary = await runDemo({ trajectories: Number(o['trajectories']), slots: Number(config.slots ?? 4), logger, progress: process.stderr.isTTY, ...(config.redisUrl ? { redisUrl: config.redisUrl } : {}), ...(config.prefix ? { prefix: config.prefix } : {}) });
    console.log(summaryTable(summary));
    process.exitCode = summary.failures === 0 ? 0 : 1;
  });

withCommon(program.command('bench'))
  .description('benchmark slotq end to end against plain docker exec; writes bench/results.json')
  .option('--iterations <n>', 'one-at-a-time calls to time', '500')
  .option('--out <file>', 'results file', 'bench/results.json')
  .action(async (o: Opts) => {
    const { runBench } = await import('./bench.js');
    const config = configFrom(o);
    const logger = createLogger({ level: String(o['logLevel'] ?? 'warn'), pretty: Boolean(o['pretty']), name: 'slotq-bench' });
    await runBench({ iterations: Number(o['iterations']), out: String(o['out']), logger, ...(config.redisUrl ? { redisUrl: config.redisUrl } : {}) });
  });

withCommon(program.command('status'))
  .description('a table of workers and slots')
  .action(async (o: Opts) => {
    console.log(await statusTable(loadConfig(configFrom(o))));
  });

withCommon(program.command('purge'))
  .description('remove every slotq key and container under a prefix')
  .action(async (o: Opts) => {
    const config = loadConfig(configFrom(o));
    const removed = await purge(config);
    console.log(`purged prefix "${config.prefix}": ${removed.keys} keys, ${removed.containers} containers`);
  });

program.parseAsync().catch((err: unknown) => {
  const e = toError(err);
  console.error(`slotq: ${e.message}`);
  process.exit(1);
});
