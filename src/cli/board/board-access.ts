import type express from 'express';
import { ConfigError } from '../../shared/errors.js';
import { isLoopback } from '../../shared/loopback.js';
import { makeTokenMatcher } from '../../shared/token-check.js';

export { isLoopback };

/** Who may see and change what on the board. */
export interface BoardAccess {
  host: string;
  /** Required for any address but loopback, and for write actions; when set, every route but /healthz needs it. */
  token: string | undefined;
  /** Retry, clean, promote and the other Bull Board actions (off unless asked for, and only with a token). */
  readWrite: boolean;
  /** Show job data (commands, file contents, lease IDs) in Bull Board; hidden by default. */
  showJobData: boolean;
}

/** Refuses a board that would be open to the network, or writable, without a token. */
export function checkBoardAccess(a: BoardAccess): void {
  if (!a.token && !isLoopback(a.host)) {
    throw new ConfigError(
      `Refusing to serve the board on ${a.host} without a token: anyone who reaches it would see every job. ` +
        'Set SLOTQ_BOARD_TOKEN (at least 16 characters; clients send "Authorization: Bearer <token>" or HTTP basic auth with the token as password), or bind 127.0.0.1 (SLOTQ_BOARD_HOST / --host).',
    );
  }
  if (a.readWrite && !a.token) {
    throw new ConfigError('The board\'s write actions (--read-write: retry, clean, promote) need SLOTQ_BOARD_TOKEN: set it, or leave the board read-only.');
  }
}

/** The token from "Authorization: Bearer <token>" or from HTTP basic auth (any user name, the token as password). */
function presented(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const [scheme, value = ''] = header.trim().split(/\s+/, 2);
  if (/^bearer$/i.test(scheme ?? '')) return value;
  if (/^basic$/i.test(scheme ?? '')) {
    const decoded = Buffer.from(value, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    return colon < 0 ? undefined : decoded.slice(colon + 1);
  }
  return undefined;
}

/** Lets a request through only with the token (compared in constant time); a browser is asked for basic auth. */
export function requireToken(token: string): express.RequestHandler {
  const matches = makeTokenMatcher(token);
  return (req, res, next) => {
    const got = presented(req.headers.authorization);
    if (got !== undefined && matches(got)) return next();
    res.set('WWW-Authenticate', 'Basic realm="slotq board", charset="UTF-8"').status(401).type('text').send('slotq board: a token is required (Bearer, or basic auth with the token as password)\n');
  };
}

/** Without --read-write, only reads reach the board, whatever Bull Board's UI offers. */
export const readOnly: express.RequestHandler = (req, res, next) => {
  if (req.method === 'GET' || req.method === 'HEAD') return next();
  res.status(405).type('text').send('slotq board is read-only: start it with --read-write (and SLOTQ_BOARD_TOKEN) to retry, clean or promote jobs\n');
};

const HIDDEN = '[hidden]';
const NOTE = 'call arguments (commands, file contents) and lease IDs are hidden: start the board with --show-job-data (SLOTQ_BOARD_SHOW_JOB_DATA=true) to show them';

/**
 * Job data as the board shows it by default: the shape of each call (tool, slot, timeout, execution ID)
 * without its arguments (commands, file contents) or its lease ID, and a note saying how to see them.
 */
export function redactJobData(data: unknown): unknown {
  const redacted = hide(data);
  return redacted !== null && typeof redacted === 'object' && !Array.isArray(redacted) ? { redacted: NOTE, ...redacted } : redacted;
}

function hide(data: unknown): unknown {
  if (Array.isArray(data)) return data.map(hide);
  if (data === null || typeof data !== 'object') return data;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(data)) out[k] = k === 'args' || k === 'leaseId' || k === 'content' || k === 'command' ? HIDDEN : hide(v);
  return out;
}
