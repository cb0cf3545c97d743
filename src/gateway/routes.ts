import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { codeOf, toError } from '../shared/errors.js';
import type { ToolRequest } from '../shared/calls/tool-backend.js';
import type { SessionManager } from './sessions.js';
import { failedResult, failure, fromWireSlot, toWireArchive, toWireList, toWireRead, toWireResult, toWireSlot } from './wire.js';
import {
  acquireBodySchema,
  acquireResponseSchema,
  archiveArtifactsBodySchema,
  closeSessionBodySchema,
  emptyBodySchema,
  errorBodySchema,
  executeBatchBodySchema,
  executeBatchResponseSchema,
  keepaliveSchema,
  listArtifactsBodySchema,
  okSchema,
  openSessionBodySchema,
  readArtifactBodySchema,
  releaseBodySchema,
  sessionParamsSchema,
  sessionSchema,
  wireArchiveArtifactsSchema,
  wireListArtifactsSchema,
  wireReadArtifactSchema,
  type WireResult,
} from './wire-schemas.js';
import { InvalidArgsError } from '../shared/errors.js';

const DEFAULT_ACQUIRE_TIMEOUT_S = 60;
const MAX_WAIT_S = 3600;
const errors = { 400: errorBodySchema, 401: errorBodySchema, 404: errorBodySchema, 409: errorBodySchema, 500: errorBodySchema, 503: errorBodySchema };
const opt = <T>(v: T | null | undefined): T | undefined => (v === null ? undefined : v);
const timeoutOpt = (s: number | null | undefined): { timeoutS?: number } => (typeof s === 'number' ? { timeoutS: s } : {});

/** The session routes: open, keepalive, close; acquire and release. */
export function sessionRoutes(app: FastifyInstance, sessions: SessionManager, defaultTtlS: number): void {
  const r = app.withTypeProvider<ZodTypeProvider>();
  const params = sessionParamsSchema;

  r.post('/v1/sessions', { schema: { summary: 'open a session (one producer with its own leases and trajectory IDs, unless it names a shared namespace)', body: openSessionBodySchema.optional(), response: { 200: sessionSchema, ...errors } } }, async (req) => {
    const s = await sessions.open(req.body?.ttl_s ?? defaultTtlS, req.body?.client ?? '', req.body?.namespace);
    const ns = s.backend.namespace;
    return { session_id: s.id, ttl_s: s.ttlMs / 1000, default_timeout_s: s.backend.defaultTimeoutS, producer_id: s.backend.producerId, ...(ns === undefined ? {} : { namespace: ns }) };
  });

  r.post('/v1/sessions/:session_id/keepalive', { schema: { summary: 'renew the session', params, body: emptyBodySchema, response: { 200: keepaliveSchema, ...errors } } }, (req) => {
    const s = sessions.keepalive(req.params.session_id);
    return Promise.resolve({ ok: true as const, ttl_s: s.ttlMs / 1000 });
  });

  r.post('/v1/sessions/:session_id/close', { schema: { summary: 'close the session: stop(purge); its slots are released with reset', params, body: closeSessionBodySchema, response: { 200: okSchema, ...errors } } }, async (req) => {
    await sessions.close(req.params.session_id, { purge: req.body?.purge ?? false });
    return { ok: true as const };
  });

  r.post('/v1/sessions/:session_id/acquire', { schema: { summary: 'acquire a slot (long-poll up to timeout_s; 503 NO_SLOT after it)', params, body: acquireBodySchema, response: { 200: acquireResponseSchema, ...errors } } }, async (req) =>
    sessions.use(req.params.session_id, async (s) => {
      const { trajectory_id, timeout_s, image, network } = req.body;
      const timeoutMs = Math.round(Math.min(MAX_WAIT_S, timeout_s ?? DEFAULT_ACQUIRE_TIMEOUT_S) * 1000);
      const opts = { timeoutMs, ...(image ? { image } : {}), ...(network ? { network } : {}) };
      const slot = await s.backend.acquire(opt(trajectory_id), opts);
      if (req.raw.socket.destroyed) {
        // The client went away while waiting (killed, or gave up): nobody will use this slot.
        await s.backend.release(slot, { resetWorkspace: true });
      }
      return { slot: toWireSlot(slot) };
    }),
  );

  r.post('/v1/sessions/:session_id/release', { schema: { summary: 'release a slot (reset_workspace: the next holder gets a pristine container)', params, body: releaseBodySchema, response: { 200: okSchema, ...errors } } }, async (req) =>
    sessions.use(req.params.session_id, async (s) => {
      const parsed = fromWireSlot(req.body.slot);
      if (!parsed.ok) throw new InvalidArgsError(parsed.error);
      await s.backend.release(parsed.slot, { resetWorkspace: req.body.reset_workspace });
      return { ok: true as const };
    }),
  );
}

/** The call routes: execute_batch and the artifact helpers. Per-call problems are results, never HTTP errors. */
export function callRoutes(app: FastifyInstance, sessions: SessionManager): void {
  const r = app.withTypeProvider<ZodTypeProvider>();
  const params = sessionParamsSchema;

  r.post('/v1/sessions/:session_id/execute_batch', { schema: { summary: 'run N calls; N results in request order', params, body: executeBatchBodySchema, response: { 200: executeBatchResponseSchema, ...errors } } }, async (req) =>
    sessions.use(req.params.session_id, async (s) => {
      const { requests, timeout_s } = req.body;
      const results = new Array<WireResult>(requests.length);
      const sent: Array<[index: number, request: ToolRequest]> = [];
      requests.forEach((call, i) => {
        const parsed = fromWireSlot(call.slot);
        if (parsed.ok) sent.push([i, [parsed.slot, call.tool, call.args]]);
        else results[i] = failedResult('INVALID_ARGS', `Request ${i}: ${parsed.error}`, typeof call.slot['slot_id'] === 'string' ? call.slot['slot_id'] : '');
      });
      if (sent.length > 0) {
        try {
          const out = await s.backend.executeBatch(sent.map(([, req]) => req), timeoutOpt(timeout_s));
          out.forEach((res, k) => (results[sent[k]![0]] = toWireResult(res)));
        } catch (err) {
          const code = codeOf(err);
          const message = toError(err).message;
          for (const [i, [slot]] of sent) results[i] = failedResult(code, message, slot.slotId);
        }
      }
      return { results };
    }),
  );

  r.post('/v1/sessions/:session_id/read_artifact', { schema: { summary: 'read a file of the slot', params, body: readArtifactBodySchema, response: { 200: wireReadArtifactSchema, ...errors } } }, async (req) =>
    sessions.use(req.params.session_id, async (s) => {
      const b = req.body;
      const parsed = fromWireSlot(b.slot);
      if (!parsed.ok) return toWireRead(failure('INVALID_ARGS', parsed.error), b.encoding);
      const opts = { encoding: b.encoding as 'text' | 'base64', includeSha256: b.include_sha256, ...(b.max_bytes != null ? { maxBytes: b.max_bytes } : {}), ...timeoutOpt(b.timeout_s) };
      return toWireRead(await s.backend.readArtifact(parsed.slot, b.path, opts).catch((err: unknown) => failure(codeOf(err), toError(err).message)), b.encoding);
    }),
  );

  r.post('/v1/sessions/:session_id/list_artifacts', { schema: { summary: 'list a directory (or one file) of the slot', params, body: listArtifactsBodySchema, response: { 200: wireListArtifactsSchema, ...errors } } }, async (req) =>
    sessions.use(req.params.session_id, async (s) => {
      const b = req.body;
      const parsed = fromWireSlot(b.slot);
      if (!parsed.ok) return toWireList(failure('INVALID_ARGS', parsed.error));
      const opts = { recursive: b.recursive, ...(b.max_entries != null ? { maxEntries: b.max_entries } : {}), ...timeoutOpt(b.timeout_s) };
      return toWireList(await s.backend.listArtifacts(parsed.slot, b.path, opts).catch((err: unknown) => failure(codeOf(err), toError(err).message)));
    }),
  );

  r.post('/v1/sessions/:session_id/archive_artifacts', { schema: { summary: 'a tar.gz (base64) of a directory or file of the slot', params, body: archiveArtifactsBodySchema, response: { 200: wireArchiveArtifactsSchema, ...errors } } }, async (req) =>
    sessions.use(req.params.session_id, async (s) => {
      const b = req.body;
      const parsed = fromWireSlot(b.slot);
      if (!parsed.ok) return toWireArchive(failure('INVALID_ARGS', parsed.error));
      const opts = {
        archiveFormat: b.archive_format as 'tar.gz' | 'tgz',
        ...(b.max_bytes != null ? { maxBytes: b.max_bytes } : {}),
        ...(b.max_entries != null ? { maxEntries: b.max_entries } : {}),
        ...timeoutOpt(b.timeout_s),
      };
      return toWireArchive(await s.backend.archiveArtifacts(parsed.slot, b.path, opts).catch((err: unknown) => failure(codeOf(err), toError(err).message)));
    }),
  );
}
