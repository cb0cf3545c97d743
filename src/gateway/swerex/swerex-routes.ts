import { posix } from 'node:path';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import type { z } from 'zod';
import type { ExecOptions } from '../../producer/sandbox.js';
import { SlotqError, toError } from '../../shared/errors.js';
import { MAX_TIMEOUT_S } from '../../shared/calls/schemas.js';
import { TRANSFER_MAX_BYTES } from '../../shared/calls/sandbox-schemas.js';
import type { SessionManager } from '../sessions.js';
import { UnknownSessionError } from '../sessions.js';
import { dropSession, runInSession, startSession, type SlotExec } from './swerex-shell.js';
import { SwerexRuntimes, type SwerexRuntime } from './swerex-runtimes.js';
import { parseMultipart, zipToTar } from './swerex-upload.js';
import {
  SWEREX_CLASS,
  SwerexWireError,
  actionSchema,
  bashObservation,
  closeSessionSchema,
  commandSchema,
  createSessionSchema,
  isAliveResponse,
  pyRepr,
  readFileSchema,
  uploadFieldsSchema,
  writeFileSchema,
  type SwerexCommand,
} from './swerex-wire.js';
import type { Session } from '../sessions.js';

/** The base URL of one trajectory: RemoteRuntime(host=f"{gateway}/swerex/{trajectory_id}", port=None) uses it verbatim. */
export const SWEREX_PREFIX = '/swerex/';
/** Relative paths in read_file / write_file / upload resolve here, as exec's default cwd does. */
const BASE_DIR = '/workspace';

interface Params {
  trajectory_id: string;
}
type Handler = (rt: SwerexRuntime, s: Session, req: FastifyRequest) => Promise<unknown>;

/** A slotq failure as the exception swerex-remote would have raised. */
function toWire(err: unknown, path?: string): SwerexWireError {
  if (err instanceof SwerexWireError) return err;
  if (err instanceof SlotqError && path !== undefined) {
    if (err.code === 'NOT_FOUND') return new SwerexWireError(SWEREX_CLASS.fileNotFound, `[Errno 2] No such file or directory: ${pyRepr(path)}`);
    if (err.code === 'PERMISSION_DENIED') return new SwerexWireError(SWEREX_CLASS.permission, `[Errno 13] Permission denied: ${pyRepr(path)}`);
  }
  const code = err instanceof SlotqError ? err.code : 'INTERNAL';
  const expired = err instanceof UnknownSessionError ? ' (the slot was released: POST /close and start again)' : '';
  return new SwerexWireError(SWEREX_CLASS.base, `slotq ${code}: ${toError(err).message}${expired}`, { slotq_code: code, retryable: err instanceof SlotqError ? err.retryable : true });
}

function parse<S extends z.ZodType>(schema: S, body: unknown): z.infer<S> {
  const r = schema.safeParse(body ?? {});
  if (!r.success) throw new ValidationError(r.error.issues.map((i) => ({ loc: ['body', ...i.path.map(String)], msg: i.message, type: i.code })));
  return r.data;
}
/** FastAPI's answer to a request that does not match the model: 422 {detail: [...]}. */
class ValidationError extends Error {
  constructor(readonly detail: Array<{ loc: string[]; msg: string; type: string }>) {
    super('validation failed');
    this.name = 'ValidationError';
  }
}

const absolute = (p: string): string => posix.resolve(BASE_DIR, p);
const slotExec = (s: Session, rt: SwerexRuntime): SlotExec => (argv, opts) => s.backend.exec(rt.slot, argv, opts);

/** Their Command as slotq argv: subprocess.run semantics for shell and merge_output_streams. */
function commandArgv(c: SwerexCommand): string[] {
  let argv: string[];
  if (c.shell) argv = typeof c.command === 'string' ? ['/bin/sh', '-c', c.command] : ['/bin/sh', '-c', ...c.command];
  else argv = typeof c.command === 'string' ? [c.command] : c.command;
  return c.merge_output_streams ? ['/bin/sh', '-c', 'exec 2>&1; exec "$@"', 'sh', ...argv] : argv;
}

async function execute(s: Session, rt: SwerexRuntime, c: SwerexCommand) {
  const timeoutS = c.timeout ?? MAX_TIMEOUT_S;
  const opts: ExecOptions = { timeoutS, ...(c.cwd !== null ? { cwd: c.cwd } : {}), ...(c.env !== null ? { env: c.env } : {}) };
  const r = await s.backend.exec(rt.slot, commandArgv(c), opts);
  if (r.timedOut) throw new SwerexWireError(SWEREX_CLASS.timeout, `Timeout (${c.timeout}s) exceeded while running command`);
  if (r.code) throw toWire(new SlotqError(r.code, r.error ?? 'exec did not run to an exit code', { retryable: r.retryable ?? false }));
  if (c.check && r.exitCode !== 0) {
    const msg = `Command ${pyRepr(typeof c.command === 'string' ? c.command : JSON.stringify(c.command))} failed with exit code ${r.exitCode}. Stdout:\n${pyRepr(r.stdout)}\nStderr:\n${pyRepr(r.stderr)}`;
    throw new SwerexWireError(SWEREX_CLASS.nonZero, c.error_msg ? `${c.error_msg}: ${msg}` : msg);
  }
  return { stdout: r.stdout, stderr: r.stderr, exit_code: r.exitCode };
}

const handlers: Record<string, Handler> = {
  create_session: async (rt, s, req) => {
    const b = parse(createSessionSchema, req.body);
    if (rt.shells.has(b.session)) throw new SwerexWireError(SWEREX_CLASS.sessionExists, `session ${b.session} already exists`);
    const output = await startSession(slotExec(s, rt), b.session, b.startup_source, b.startup_timeout);
    rt.shells.add(b.session);
    return { output, session_type: 'bash' };
  },
  run_in_session: async (rt, s, req) => {
    const a = parse(actionSchema, req.body);
    if (!rt.shells.has(a.session)) throw new SwerexWireError(SWEREX_CLASS.noSession, `session ${pyRepr(a.session)} does not exist`);
    // Each command runs to its end or its timeout (which kills it), so there is never one to interrupt.
    if (a.action_type === 'bash_interrupt') return bashObservation('', 0);
    return runInSession(slotExec(s, rt), a);
  },
  close_session: async (rt, s, req) => {
    const b = parse(closeSessionSchema, req.body);
    if (!rt.shells.delete(b.session)) throw new SwerexWireError(SWEREX_CLASS.noSession, `session ${pyRepr(b.session)} does not exist`);
    await dropSession(slotExec(s, rt), b.session);
    return { session_type: 'bash' };
  },
  execute: async (rt, s, req) => execute(s, rt, parse(commandSchema, req.body)),
  read_file: async (rt, s, req) => {
    const b = parse(readFileSchema, req.body);
    try {
      const bytes = await s.backend.readFile(rt.slot, absolute(b.path));
      return { content: Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8') };
    } catch (err) {
      throw toWire(err, b.path);
    }
  },
  write_file: async (rt, s, req) => {
    const b = parse(writeFileSchema, req.body);
    try {
      await s.backend.writeFile(rt.slot, absolute(b.path), b.content);
    } catch (err) {
      throw toWire(err, b.path);
    }
    return {};
  },
  upload: async (rt, s, req) => {
    const form = parseMultipart(req.body as Buffer, req.headers['content-type']);
    const f = parse(uploadFieldsSchema, form.fields);
    if (!form.file) throw new SwerexWireError(SWEREX_CLASS.value, 'upload: the form has no file field');
    const target = absolute(f.target_path);
    try {
      if (f.unzip) await s.backend.upload(rt.slot, zipToTar(form.file), target);
      else await s.backend.writeFile(rt.slot, target, form.file);
    } catch (err) {
      throw toWire(err, f.target_path);
    }
    return {};
  },
};

function sendError(reply: FastifyReply, err: unknown): FastifyReply {
  if (err instanceof ValidationError) return reply.code(422).send({ detail: err.detail });
  return reply.code(511).send(toWire(err).body());
}

/**
 * SWE-ReX's swerex-remote routes, one base URL per trajectory (docs/swerex.md): SWE-agent's
 * `deployment.type=remote` with host=<gateway>/swerex/<trajectory_id> (and no port) runs unchanged on a slot.
 */
export function swerexRoutes(app: FastifyInstance, sessions: SessionManager, ttlS: number, log: Logger): SwerexRuntimes {
  const runtimes = new SwerexRuntimes(sessions, ttlS, log);
  app.register((scope, _opts, done) => {
    scope.addContentTypeParser('multipart/form-data', { parseAs: 'buffer', bodyLimit: TRANSFER_MAX_BYTES }, (_req, body, cb) => cb(null, body));
    scope.get<{ Params: Params }>('/swerex/:trajectory_id/is_alive', { schema: { hide: true } }, () => Promise.resolve(isAliveResponse()));
    scope.get<{ Params: Params }>('/swerex/:trajectory_id/', { schema: { hide: true } }, () => Promise.resolve({ message: 'hello world' }));
    scope.post<{ Params: Params }>('/swerex/:trajectory_id/close', { schema: { hide: true } }, async (req, reply) => {
      try {
        await runtimes.close(req.params.trajectory_id);
        return {};
      } catch (err) {
        return sendError(reply, err);
      }
    });
    for (const [route, handler] of Object.entries(handlers)) {
      scope.post<{ Params: Params }>(`/swerex/:trajectory_id/${route}`, { schema: { hide: true } }, async (req, reply) => {
        try {
          return await runtimes.use(req.params.trajectory_id, (rt, s) => handler(rt, s, req));
        } catch (err) {
          return sendError(reply, err);
        }
      });
    }
    done();
  });
  return runtimes;
}
