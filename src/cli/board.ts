import { ExpressAdapter } from '@bull-board/express';
import express from 'express';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import type { Logger } from 'pino';
import type { SlotqConfig } from '../shared/config.js';
import { toError } from '../shared/errors.js';
import { keysFor } from '../shared/keys.js';
import { connectRedis, redactUrl, verifyRedis } from '../shared/redis.js';
import { Registry } from '../shared/registry/registry.js';
import { checkBoardAccess, readOnly, requireToken, type BoardAccess } from './board/board-access.js';
import { BoardMetrics } from './board/board-metrics.js';
import { clusterSnapshot, type ClusterSnapshot } from './board/cluster-snapshot.js';
import { QueueSync } from './board/queue-sync.js';
import { renderSlotsPage } from './board/slots-page.js';

export interface BoardOptions {
  config: SlotqConfig;
  logger: Logger;
  /** Overrides config.boardPort (0 = any free port). */
  port?: number;
  /** Overrides config.boardHost (default 127.0.0.1; any other address needs config.boardToken). */
  host?: string;
  /** How often the workers set is polled for queues to add or remove (ms). */
  pollMs?: number;
  /** Let Bull Board retry, remove and clean jobs (default: read-only; needs config.boardToken). */
  readWrite?: boolean;
  /** Overrides config.boardShowJobData: show call arguments and lease IDs in Bull Board. */
  showJobData?: boolean;
}

export interface BoardHandle {
  readonly url: string;
  readonly port: number;
  /** Re-reads the workers set now (the poll does it every pollMs). */
  sync(): Promise<void>;
  close(): Promise<void>;
}

/**
 * `slotq board`: Bull Board with every worker's queue (found as workers come and go), a slots view,
 * Prometheus metrics for every worker, and a health check, on one HTTP port. Loopback only unless a
 * token guards it; read-only and with job data hidden unless the operator asks.
 */
export async function startBoard(opts: BoardOptions): Promise<BoardHandle> {
  const { config, logger: log } = opts;
  const access: BoardAccess = {
    host: opts.host ?? config.boardHost,
    token: config.boardToken,
    readWrite: opts.readWrite ?? false,
    showJobData: opts.showJobData ?? config.boardShowJobData,
  };
  checkBoardAccess(access);
  const keys = keysFor(config.prefix);
  const redis = connectRedis(config, { name: 'slotq-board' });
  try {
    await verifyRedis(redis, config.redisUrl);
  } catch (err) {
    redis.disconnect();
    throw err;
  }
  const registry = new Registry(redis, keys);
  const serverAdapter = new ExpressAdapter().setBasePath('/queues');
  const queues = new QueueSync(redis, registry, keys, serverAdapter, log, !access.readWrite, access.showJobData);
  await queues.start(opts.pollMs ?? 3000);
  const snapshot = (): Promise<ClusterSnapshot> => clusterSnapshot(redis, registry, keys, (id) => queues.queueOf(id));
  const metrics = new BoardMetrics(snapshot);

  // Health: PING with a deadline (commands queue while Redis is away, so a plain ping would hang).
  const app = boardApp(access, serverAdapter, snapshot, metrics, log, () => verifyRedis(redis, config.redisUrl, 2000), () => queues.workerIds.length);
  let server: Server;
  try {
    server = await listen(app, opts.port ?? config.boardPort, access.host);
  } catch (err) {
    await queues.close();
    redis.disconnect();
    throw err;
  }
  const port = (server.address() as AddressInfo).port;
  const url = `http://${isAnyAddress(access.host) ? '127.0.0.1' : access.host.includes(':') ? `[${access.host}]` : access.host}:${port}`;
  log.info(
    { url, host: access.host, token: access.token ? 'required' : 'none (loopback only)', readWrite: access.readWrite, showJobData: access.showJobData, redis: redactUrl(config.redisUrl), prefix: config.prefix },
    'board listening',
  );
  return {
    url,
    port,
    sync: () => queues.sync(),
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await queues.close();
      redis.disconnect();
    },
  };
}

const isAnyAddress = (host: string): boolean => host === '0.0.0.0' || host === '::';

/**
 * The board's routes: the health check (open: it tells only whether Redis answers), then, behind the
 * token when there is one, Bull Board under /queues, the slots view and metrics.
 */
function boardApp(access: BoardAccess, serverAdapter: ExpressAdapter, snapshot: () => Promise<ClusterSnapshot>, metrics: BoardMetrics, log: Logger, ping: () => Promise<unknown>, workerCount: () => number): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.get('/healthz', (_req, res) => {
    ping().then(
      () => res.json({ ok: true, redis: 'up', workers: workerCount() }),
      (err: unknown) => res.status(503).json({ ok: false, redis: toError(err).message }),
    );
  });
  if (access.token) app.use(requireToken(access.token));
  if (!access.readWrite) app.use(readOnly);
  app.get('/', (_req, res) => res.redirect('/queues'));
  app.use('/queues', serverAdapter.getRouter() as express.Router);
  app.get('/slots.json', handle(log, async (_req, res) => void res.json(await snapshot())));
  app.get('/slots', handle(log, async (req, res) => {
    const snap = await snapshot();
    if (req.accepts(['html', 'json']) === 'json') res.json(snap);
    else res.type('html').send(renderSlotsPage(snap));
  }));
  app.get('/metrics', handle(log, async (_req, res) => void res.type(metrics.contentType).send(await metrics.render())));
  return app;
}

type Handler = (req: express.Request, res: express.Response) => Promise<void>;

/** An async route whose failure is a 500 with the message (and a log line), never an unhandled rejection. */
function handle(log: Logger, fn: Handler): express.RequestHandler {
  return (req, res) => {
    fn(req, res).catch((err: unknown) => {
      log.warn({ path: req.path, err: toError(err).message }, 'board: request failed');
      if (!res.headersSent) res.status(500).type('text').send(`error: ${toError(err).message}`);
    });
  };
}

function listen(app: express.Express, port: number, host: string): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = app.listen(port, host, (err?: Error) => (err ? reject(err) : resolve(server)));
    server.once('error', reject);
  });
}
