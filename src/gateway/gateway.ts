import fastifySwagger from '@fastify/swagger';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { jsonSchemaTransform, jsonSchemaTransformObject, serializerCompiler, validatorCompiler, type ZodTypeProvider } from 'fastify-type-provider-zod';
import type { Logger } from 'pino';
import type { SlotqConfig } from '../shared/config.js';
import { toError } from '../shared/errors.js';
import { connectRedis, redactUrl, verifyRedis } from '../shared/redis.js';
import { checkListenAddress, makeApiKeyCheck, makeTokenCheck } from './auth.js';
import { errorBody, makeErrorHandler } from './http-errors.js';
import { callRoutes, sessionRoutes } from './routes.js';
import { sandboxRoutes } from './sandbox-routes.js';
import { SessionManager } from './sessions.js';
import { SWEREX_PREFIX, swerexRoutes } from './swerex/swerex-routes.js';
import { healthSchema } from './wire-schemas.js';

export interface GatewayOptions {
  config: SlotqConfig;
  logger: Logger;
  /** Override config.gatewayHost / gatewayPort (0 = any free port) / gatewayToken / gatewaySessionTtlS. */
  host?: string;
  port?: number;
  token?: string;
  sessionTtlS?: number;
  maxBodyBytes?: number;
  maxSessions?: number;
}

export interface GatewayHandle {
  readonly url: string;
  readonly port: number;
  readonly sessions: SessionManager;
  /** Closes every session (slots released with reset; calls in flight answered BACKEND_STOPPED), then the server. */
  close(): Promise<void>;
}

/** Routes reachable without a token. */
const OPEN_ROUTES = new Set(['/v1/health', '/v1/openapi.json']);

/**
 * `slotq gateway`: SlotBackend over HTTP/JSON for other languages (contract §9). One session is one
 * SlotBackend; the wire is the Python seed's snake_case shapes; OpenAPI at /v1/openapi.json.
 */
export async function startGateway(opts: GatewayOptions): Promise<GatewayHandle> {
  const { config, logger: log } = opts;
  const host = opts.host ?? config.gatewayHost;
  const token = opts.token ?? config.gatewayToken;
  checkListenAddress(host, token);

  const redis = connectRedis(config, { name: 'slotq-gateway' });
  try {
    await verifyRedis(redis, config.redisUrl);
  } catch (err) {
    redis.disconnect();
    throw err;
  }
  const sessions = new SessionManager({ config, logger: log, ...(opts.maxSessions ? { maxSessions: opts.maxSessions } : {}) });
  const app = await buildApp({
    config,
    logger: log,
    token,
    sessions,
    sessionTtlS: opts.sessionTtlS ?? config.gatewaySessionTtlS,
    maxBodyBytes: opts.maxBodyBytes ?? config.gatewayMaxBodyBytes,
    health: () => verifyRedis(redis, config.redisUrl, 2000),
  });
  try {
    await app.listen({ host, port: opts.port ?? config.gatewayPort });
  } catch (err) {
    await sessions.closeAll();
    redis.disconnect();
    throw err;
  }
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  log.info({ url, openapi: `${url}/v1/openapi.json`, auth: token ? 'bearer token' : 'none (loopback only)', redis: redactUrl(config.redisUrl), prefix: config.prefix }, 'gateway listening');
  let closing: Promise<void> | undefined;
  return {
    url,
    port,
    sessions,
    close() {
      closing ??= (async () => {
        await sessions.closeAll();
        await app.close();
        redis.disconnect();
      })();
      return closing;
    },
  };
}

interface AppOptions {
  config: SlotqConfig;
  logger: Logger;
  token: string | undefined;
  sessions: SessionManager;
  sessionTtlS: number;
  maxBodyBytes: number;
  health: () => Promise<void>;
}

async function buildApp(opts: AppOptions): Promise<FastifyInstance> {
  const { logger: log, sessions } = opts;
  const fastifyLog: FastifyBaseLogger = log;
  const app = Fastify({
    loggerInstance: fastifyLog,
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: opts.maxBodyBytes,
    // Longer than any client keeps an idle connection, so a reused keep-alive connection is never closed under it.
    keepAliveTimeout: 65_000,
    return503OnClosing: true,
  });
  // JSON only: a text/plain body is refused as a wrong Content-Type, not parsed as a string.
  app.removeContentTypeParser('text/plain');
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  app.setErrorHandler(makeErrorHandler(log));
  app.setNotFoundHandler((req, reply) => {
    void reply.code(404).send(errorBody('NOT_FOUND', `No route ${req.method} ${req.url}: see /v1/openapi.json`, false));
  });

  if (opts.token !== undefined) {
    const check = makeTokenCheck(opts.token);
    const apiKey = makeApiKeyCheck(opts.token);
    app.addHook('onRequest', async (req, reply) => {
      if (OPEN_ROUTES.has(req.url)) return;
      // SWE-ReX's RemoteRuntime sends its auth_token as X-API-Key; swerex-remote answers a wrong one 401 {detail}.
      if (req.url.startsWith(SWEREX_PREFIX) && req.headers.authorization === undefined) {
        if (!apiKey(req.headers['x-api-key'])) await reply.code(401).send({ detail: 'Invalid API Key' });
        return;
      }
      const outcome = check(req.headers.authorization);
      if (!outcome.ok) {
        await reply.code(401).header('www-authenticate', 'Bearer').send(errorBody('UNAUTHORIZED', outcome.message, false));
      }
    });
  }

  await app.register(fastifySwagger, {
    openapi: {
      openapi: '3.1.0',
      info: { title: 'slotq gateway', version: '1', description: 'SlotBackend over HTTP/JSON (contract §9): sessions, acquire/release, execute_batch, artifacts' },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      security: opts.token !== undefined ? [{ bearer: [] }] : [],
    },
    transform: jsonSchemaTransform,
    transformObject: jsonSchemaTransformObject,
  });

  const r = app.withTypeProvider<ZodTypeProvider>();
  r.get('/v1/health', { schema: { summary: 'health: 200 while Redis answers', response: { 200: healthSchema, 503: healthSchema } } }, async (_req, reply) => {
    try {
      await opts.health();
      return { status: 'ok' as const, redis: true, sessions: sessions.size };
    } catch (err) {
      return reply.code(503).send({ status: 'degraded' as const, redis: false, sessions: sessions.size, error: toError(err).message });
    }
  });
  app.get('/v1/openapi.json', { schema: { hide: true } }, () => Promise.resolve(app.swagger()));
  sessionRoutes(app, sessions, opts.sessionTtlS);
  callRoutes(app, sessions);
  sandboxRoutes(app, sessions);
  swerexRoutes(app, sessions, opts.sessionTtlS, log);
  await app.ready();
  return app;
}
