import type { ChildProcess } from 'node:child_process';
import type { Logger } from 'pino';
import type { SlotqConfig } from '../shared/config.js';
import { SlotWorker } from '../worker/slot-worker.js';
import { startGateway, type GatewayHandle } from '../gateway/gateway.js';
import { startBoard, type BoardHandle, type BoardOptions } from './board.js';
import { ensureLocalRedis } from './local-redis.js';

export interface UpHandle {
  worker: SlotWorker;
  board: BoardHandle;
  /** The HTTP/JSON gateway for Python clients (SLOTQ_GATEWAY_*; loopback only without a token). */
  gateway: GatewayHandle;
  stop(): Promise<void>;
}

/**
 * `slotq up`: everything on one machine for trying slotq: a local redis-server when none answers,
 * one worker, the board and the gateway (for Python clients), in this process. stop() undoes all of it.
 */
export async function runUp(opts: { config: SlotqConfig; logger: Logger; workerId?: string; board?: Omit<BoardOptions, 'config' | 'logger'> }): Promise<UpHandle> {
  const { config, logger } = opts;
  // With Sentinel, REDIS_URL names no server (only credentials): the sentinels' master is the worker's to find.
  const redis: ChildProcess | undefined = config.redisSentinels?.length ? undefined : await ensureLocalRedis(config.redisUrl, logger);
  const worker = new SlotWorker({ ...config, logger, ...(opts.workerId ? { workerId: opts.workerId } : {}) });
  let board: BoardHandle | undefined;
  let gateway: GatewayHandle | undefined;
  const stop = async (): Promise<void> => {
    await gateway?.close();
    await board?.close();
    await worker.stop();
    redis?.kill('SIGTERM');
  };
  try {
    await worker.start();
    board = await startBoard({ config, logger, ...opts.board });
    gateway = await startGateway({ config, logger });
  } catch (err) {
    await stop();
    throw err;
  }
  logger.info({ board: board.url, queues: `${board.url}/queues`, slots: `${board.url}/slots`, gateway: gateway.url, worker: worker.workerId }, 'slotq is up: point a SlotBackend at this Redis, or a Python SlotqBackend at the gateway (SLOTQ_URL)');
  return { worker, board, gateway, stop };
}
