import { Command, Option } from 'commander';
import { loadConfig } from '../shared/config.js';
import { createLogger } from '../shared/logger.js';
import { toError } from '../shared/errors.js';
import { SlotWorker } from '../worker/slot-worker.js';
import { purge, statusTable } from './admin.js';
import { startBoard, type BoardOptions } from './board.js';
import { configFrom, stopOnSignals, withBoard, withCommon, withWorker, workerIdFrom, type Opts } from './cli-options.js';
import { runDemo, summaryTable } from './demo.js';
import { runUp } from './up.js';
import { registerGatewayCommand } from './gateway-command.js';
import { registerSandboxCommands } from './sandbox-commands.js';

const program = new Command('slotq').description('Tool-execution layer for agent RL training: isolated Docker slots driven through Redis/BullMQ').showHelpAfterError();

const boardOptions = (o: Opts): Omit<BoardOptions, 'config' | 'logger'> => ({ host: String(o['host']), pollMs: Number(o['pollMs']), readWrite: Boolean(o['readWrite']) });
const loggerFor = (o: Opts, level: string, name: string) => createLogger({ level, pretty: Boolean(o['pretty']), name });

withWorker(withCommon(program.command('worker')))
  .description('run a SlotWorker (its container slots) until SIGINT/SIGTERM, which drains it: no new leases, calls in flight finish')
  .action(async (o: Opts) => {
    const config = loadConfig(configFrom(o));
    const logger = loggerFor(o, config.logLevel, 'slotq-worker');
    const worker = new SlotWorker({ ...config, logger, ...workerIdFrom(o) });
    stopOnSignals(logger, () => worker.stop());
    await worker.start();
  });

withBoard(withCommon(program.command('board')))
  .description('serve Bull Board (every worker queue), /slots, /metrics (Prometheus) and /healthz')
  .action(async (o: Opts) => {
    const config = loadConfig(configFrom(o));
    const logger = loggerFor(o, config.logLevel, 'slotq-board');
    const board = await startBoard({ config, logger, ...boardOptions(o) });
    stopOnSignals(logger, () => board.close());
  });

withBoard(withWorker(withCommon(program.command('up'))))
  .description('try slotq on one machine: a local redis-server (when none answers), a worker and the board, in one process')
  .action(async (o: Opts) => {
    const config = loadConfig(configFrom(o));
    const logger = loggerFor(o, config.logLevel, 'slotq');
    const up = await runUp({ config, logger, board: boardOptions(o), ...workerIdFrom(o) });
    stopOnSignals(logger, () => up.stop());
  });

withCommon(program.command('demo'))
  .description('run a realistic training-loop workload against a local worker and print a summary')
  .option('--trajectories <n>', 'concurrent agent trajectories', '16')
  .addOption(new Option('--slots <n>', 'slots of the demo worker').default('4').env('SLOTQ_SLOTS'))
  .action(async (o: Opts) => {
    const config = configFrom(o);
    const logger = loggerFor(o, String(o['logLevel'] ?? 'warn'), 'slotq-demo');
    const summary = await runDemo({ trajectories: Number(o['trajectories']), slots: Number(config.slots ?? 4), logger, progress: process.stderr.isTTY, ...(config.redisUrl ? { redisUrl: config.redisUrl } : {}), ...(config.prefix ? { prefix: config.prefix } : {}) });
    console.log(summaryTable(summary));
    process.exitCode = summary.failures === 0 ? 0 : 1;
  });

registerGatewayCommand(program);
registerSandboxCommands(program);

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
