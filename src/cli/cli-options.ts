import { Option, type Command } from 'commander';
import type { Logger } from 'pino';
import type { SlotqOptions } from '../shared/config.js';
import { ConfigError, toError } from '../shared/errors.js';

export type Opts = Record<string, string | boolean | undefined>;

/** Options shared by every command, with their env variables (contract §8). */
export function withCommon(cmd: Command): Command {
  return cmd
    .addOption(new Option('--redis-url <url>', 'Redis URL (rediss:// and passwords work)').env('REDIS_URL'))
    .addOption(new Option('--prefix <prefix>', 'key and queue prefix').env('SLOTQ_PREFIX'))
    .addOption(new Option('--log-level <level>', 'fatal|error|warn|info|debug|trace|silent').env('SLOTQ_LOG_LEVEL'))
    .option('--pretty', 'human-readable logs instead of JSON lines', false);
}

/** The options of a worker: its slots and their containers. */
export function withWorker(cmd: Command): Command {
  return cmd
    .addOption(new Option('--slots <n>', 'slots (containers) this worker owns').env('SLOTQ_SLOTS'))
    .addOption(new Option('--image <image>', 'sandbox image').env('SLOTQ_IMAGE'))
    .addOption(new Option('--network <name>', 'container network ("none" = no network)').env('SLOTQ_NETWORK'))
    .addOption(new Option('--memory-mb <n>', 'memory limit per slot (MB)').env('SLOTQ_MEMORY_MB'))
    .addOption(new Option('--cpus <n>', 'CPU limit per slot').env('SLOTQ_CPUS'))
    .addOption(new Option('--pids <n>', 'process limit per slot').env('SLOTQ_PIDS'))
    .addOption(new Option('--default-timeout-s <s>', 'per-call timeout when none is given (s)').env('SLOTQ_DEFAULT_TIMEOUT_S'))
    .option('--worker-id <id>', 'worker id (default: host name plus random; letters, digits and - only)');
}

/** The options of the board. */
export function withBoard(cmd: Command): Command {
  return cmd
    .addOption(new Option('--port <n>', 'HTTP port of the board (0 = any free port)').env('SLOTQ_BOARD_PORT'))
    .addOption(new Option('--host <host>', 'address to listen on (any but loopback needs SLOTQ_BOARD_TOKEN)').env('SLOTQ_BOARD_HOST').default('127.0.0.1'))
    .option('--poll-ms <ms>', 'how often the workers set is polled for queues to add or remove', '3000')
    .option('--read-write', 'let Bull Board retry, remove and clean jobs (needs SLOTQ_BOARD_TOKEN; read-only otherwise)')
    .option('--show-job-data', 'show call arguments (commands, file contents) and lease IDs in Bull Board (hidden otherwise; or SLOTQ_BOARD_SHOW_JOB_DATA=true)');
}

const FIELDS: ReadonlyArray<[option: string, key: keyof SlotqOptions]> = [
  ['redisUrl', 'redisUrl'],
  ['prefix', 'prefix'],
  ['logLevel', 'logLevel'],
  ['slots', 'slots'],
  ['image', 'image'],
  ['network', 'network'],
  ['memoryMb', 'memoryMb'],
  ['cpus', 'cpus'],
  ['pids', 'pids'],
  ['defaultTimeoutS', 'defaultTimeoutS'],
  ['port', 'boardPort'],
  ['showJobData', 'boardShowJobData'],
];

/** The SlotqOptions given on the command line (or through their env variables), as strings: loadConfig coerces and validates them. */
export function configFrom(o: Opts): SlotqOptions {
  const pick: Record<string, string> = {};
  for (const [option, key] of FIELDS) {
    const v = o[option];
    if (typeof v === 'string' && v !== '') pick[key] = v;
    else if (v === true) pick[key] = 'true';
  }
  return pick;
}

/** The --worker-id option, checked (BullMQ forbids colons in queue names). */
export function workerIdFrom(o: Opts): { workerId?: string } {
  const id = o['workerId'];
  if (typeof id !== 'string' || id === '') return {};
  if (!/^[A-Za-z0-9_.-]{1,64}$/.test(id)) throw new ConfigError(`Invalid option --worker-id=${JSON.stringify(id)}: letters, digits, _ . - only (at most 64)`);
  return { workerId: id };
}

/** Runs stop() once on the first SIGINT/SIGTERM, then exits (0 when it stopped cleanly). */
export function stopOnSignals(logger: Logger, stop: () => Promise<void>): void {
  let stopping = false;
  const onSignal = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'stopping: draining calls in flight');
    stop().then(
      () => process.exit(0),
      (err: unknown) => {
        logger.error({ err: toError(err).message }, 'stop failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => onSignal('SIGINT'));
  process.on('SIGTERM', () => onSignal('SIGTERM'));
}
