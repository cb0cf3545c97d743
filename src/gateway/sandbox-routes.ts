import type { FastifyInstance, FastifyReply } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import type { Readable } from 'node:stream';
import { z } from 'zod';
import { SlotqError, codeOf, isRetryable, toError } from '../shared/errors.js';
import { execUserSchema, TRANSFER_MAX_BYTES } from '../shared/calls/sandbox-schemas.js';
import type { Slot } from '../shared/calls/schemas.js';
import type { SessionManager } from './sessions.js';
import { fromWireSlot } from './wire.js';
import { errorBodySchema, sessionParamsSchema } from './wire-schemas.js';

/**
 * The harness's surface over HTTP (docs/harnesses.md): exec, and bytes and directories at any path.
 * JSON in and out, except the bytes themselves: write_file and upload take an application/octet-stream body
 * (the slot in the X-Slotq-Slot header, as JSON), read_file and download answer with one. A failure is
 * always a 200 JSON body {success: false, code, error, retryable}, never an HTTP error.
 */
const slotField = z.record(z.string(), z.unknown()).describe('a slot object as returned by acquire');
const user = execUserSchema.optional().describe('a user name or uid (default: the slot\'s user)');
const seconds = z.number().finite().optional();

const execBodySchema = z.strictObject({
  slot: slotField,
  command: z.union([z.string(), z.array(z.string())]).describe('a string runs under the image\'s sh -c; an array runs as argv, no shell'),
  cwd: z.string().optional(),
  env: z.record(z.string(), z.string()).optional(),
  user,
  stdin: z.string().optional().describe('text for the command\'s stdin'),
  stdin_b64: z.string().optional().describe('bytes for the command\'s stdin, base64'),
  timeout_s: seconds,
});
const execResponseSchema = z
  .object({
    exit_code: z.number(),
    stdout: z.string(),
    stderr: z.string(),
    stdout_bytes: z.number(),
    stderr_bytes: z.number(),
    timed_out: z.boolean(),
    truncated: z.boolean(),
    duration_ms: z.number(),
    code: z.string().optional(),
    retryable: z.boolean().optional(),
    outcome: z.string().optional(),
    error: z.string().optional(),
  })
  .meta({ id: 'ExecResult' });
const fileQuerySchema = z.strictObject({ path: z.string(), mode: z.coerce.number().int().optional(), user: z.string().optional(), timeout_s: z.coerce.number().optional() });
const uploadQuerySchema = z.strictObject({ target: z.string(), user: z.string().optional(), timeout_s: z.coerce.number().optional() });
const readBodySchema = z.strictObject({ slot: slotField, path: z.string(), user, max_bytes: z.number().int().positive().optional(), timeout_s: seconds });
const resultSchema = z.object({ success: z.boolean(), code: z.string().optional(), error: z.string().optional(), retryable: z.boolean().optional() }).meta({ id: 'TransferResult' });
const errors = { 400: errorBodySchema, 401: errorBodySchema, 404: errorBodySchema, 503: errorBodySchema };

const failed = (err: unknown) => {
  const code = codeOf(err);
  return { success: false, code, error: toError(err).message, retryable: err instanceof SlotqError ? err.retryable : isRetryable(code) };
};
/** A numeric user in a query string is a uid. */
const queryUser = (u: string | undefined): string | number | undefined => (u === undefined ? undefined : /^\d+$/.test(u) ? Number(u) : u);
const opts = (u: string | number | undefined, timeoutS: number | undefined) => ({ ...(u !== undefined ? { user: u } : {}), ...(timeoutS !== undefined ? { timeoutS } : {}) });

function headerSlot(raw: string | string[] | undefined): Slot {
  let value: unknown;
  try {
    value = JSON.parse(String(raw ?? ''));
  } catch {
    throw new SlotqError('INVALID_ARGS', 'the X-Slotq-Slot header must hold the slot from acquire, as JSON');
  }
  const parsed = fromWireSlot(value);
  if (!parsed.ok) throw new SlotqError('INVALID_ARGS', parsed.error);
  return parsed.slot;
}
function bodySlot(value: unknown): Slot {
  const parsed = fromWireSlot(value);
  if (!parsed.ok) throw new SlotqError('INVALID_ARGS', parsed.error);
  return parsed.slot;
}

async function collect(stream: Readable, max: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  let n = 0;
  for await (const c of stream as AsyncIterable<Buffer>) {
    n += c.length;
    if (n > max) throw new SlotqError('TOO_LARGE', `the body is over ${max} bytes`);
    parts.push(c);
  }
  return Buffer.concat(parts);
}

const sendBytes = (reply: FastifyReply, body: Buffer | Readable) => reply.type('application/octet-stream').send(body);

export function sandboxRoutes(app: FastifyInstance, sessions: SessionManager): void {
  // Bytes arrive as a stream: write_file collects them (capped), upload passes them on in chunks.
  app.addContentTypeParser('application/octet-stream', { bodyLimit: TRANSFER_MAX_BYTES }, (_req, payload, done) => done(null, payload));
  const r = app.withTypeProvider<ZodTypeProvider>();
  const params = sessionParamsSchema;

  r.post('/v1/sessions/:session_id/exec', { schema: { summary: 'run a command in the slot (cwd, env, user, stdin); stdout and stderr apart', params, body: execBodySchema, response: { 200: execResponseSchema, ...errors } } }, async (req) =>
    sessions.use(req.params.session_id, async (s) => {
      const b = req.body;
      const stdin = b.stdin_b64 !== undefined ? Buffer.from(b.stdin_b64, 'base64') : b.stdin;
      try {
        const res = await s.backend.exec(bodySlot(b.slot), b.command, { ...(b.cwd !== undefined ? { cwd: b.cwd } : {}), ...(b.env ? { env: b.env } : {}), ...(stdin !== undefined ? { stdin } : {}), ...opts(b.user, b.timeout_s) });
        return {
          exit_code: res.exitCode,
          stdout: res.stdout,
          stderr: res.stderr,
          stdout_bytes: res.stdoutBytes,
          stderr_bytes: res.stderrBytes,
          timed_out: res.timedOut,
          truncated: res.truncated,
          duration_ms: res.durationMs,
          ...(res.code ? { code: res.code, retryable: res.retryable ?? isRetryable(res.code), error: res.error ?? '' } : {}),
          ...(res.outcome ? { outcome: res.outcome } : {}),
        };
      } catch (err) {
        const f = failed(err);
        return { exit_code: -1, stdout: '', stderr: '', stdout_bytes: 0, stderr_bytes: 0, timed_out: false, truncated: false, duration_ms: 0, code: f.code, retryable: f.retryable, error: f.error };
      }
    }),
  );

  r.post('/v1/sessions/:session_id/write_file', { schema: { summary: 'write the body (application/octet-stream) at ?path=, parents made; slot in X-Slotq-Slot', params, querystring: fileQuerySchema, response: { 200: resultSchema, ...errors } } }, async (req) =>
    sessions.use(req.params.session_id, async (s) => {
      try {
        const data = await collect(req.body as Readable, TRANSFER_MAX_BYTES);
        const q = req.query;
        await s.backend.writeFile(headerSlot(req.headers['x-slotq-slot']), q.path, data, { ...(q.mode !== undefined ? { mode: q.mode } : {}), ...opts(queryUser(q.user), q.timeout_s) });
        return { success: true };
      } catch (err) {
        return failed(err);
      }
    }),
  );

  r.post('/v1/sessions/:session_id/read_file', { schema: { summary: 'a file\'s bytes (application/octet-stream), or a JSON failure', params, body: readBodySchema } }, async (req, reply) =>
    sessions.use(req.params.session_id, async (s) => {
      const b = req.body;
      try {
        const bytes = await s.backend.readFile(bodySlot(b.slot), b.path, { ...(b.max_bytes ? { maxBytes: b.max_bytes } : {}), ...opts(b.user, b.timeout_s) });
        return sendBytes(reply, Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
      } catch (err) {
        return reply.type('application/json').send(failed(err));
      }
    }),
  );

  r.post('/v1/sessions/:session_id/upload', { schema: { summary: 'unpack the body (a tar, application/octet-stream) into ?target=; slot in X-Slotq-Slot', params, querystring: uploadQuerySchema, response: { 200: resultSchema, ...errors } } }, async (req) =>
    sessions.use(req.params.session_id, async (s) => {
      try {
        const q = req.query;
        await s.backend.upload(headerSlot(req.headers['x-slotq-slot']), req.body as Readable, q.target, opts(queryUser(q.user), q.timeout_s));
        return { success: true };
      } catch (err) {
        return failed(err);
      }
    }),
  );

  r.post('/v1/sessions/:session_id/download', { schema: { summary: 'a tar of a directory or file (application/octet-stream), or a JSON failure', params, body: readBodySchema } }, async (req, reply) =>
    sessions.use(req.params.session_id, async (s) => {
      const b = req.body;
      try {
        const tar = await s.backend.download(bodySlot(b.slot), b.path, { ...(b.max_bytes ? { maxBytes: b.max_bytes } : {}), ...opts(b.user, b.timeout_s) });
        // Whole before the answer starts: a failure midway is then still a JSON failure, not a cut stream.
        return sendBytes(reply, await collect(tar, TRANSFER_MAX_BYTES));
      } catch (err) {
        return reply.type('application/json').send(failed(err));
      }
    }),
  );
}
