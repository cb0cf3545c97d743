import { createHash, timingSafeEqual } from 'node:crypto';
import { isIP } from 'node:net';
import { ConfigError } from '../shared/errors.js';

/** True for addresses only this machine can reach. */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (h === 'localhost' || h === '::1' || h === '0:0:0:0:0:0:0:1') return true;
  if (isIP(h) === 4) return h.startsWith('127.');
  if (h.startsWith('::ffff:')) return h.slice(7).startsWith('127.');
  return false;
}

/** Without a token the gateway serves loopback only: anything else is refused at start. */
export function checkListenAddress(host: string, token: string | undefined): void {
  if (token === undefined && !isLoopback(host)) {
    throw new ConfigError(
      `Refusing to listen on ${host} without a token: set SLOTQ_GATEWAY_TOKEN (at least 16 characters) or listen on 127.0.0.1 (SLOTQ_GATEWAY_HOST)`,
    );
  }
}

const digest = (s: string): Buffer => createHash('sha256').update(s, 'utf8').digest();

export type AuthOutcome = { ok: true } | { ok: false; message: string };

/**
 * Checks `Authorization: Bearer <token>`. The comparison runs in constant time (SHA-256 digests of
 * equal length through timingSafeEqual), so the time taken does not leak how much of a guess was right.
 */
export function makeTokenCheck(token: string): (header: string | undefined) => AuthOutcome {
  const expected = digest(token);
  return (header) => {
    const m = header === undefined ? null : /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header);
    if (!m?.[1]) {
      return { ok: false, message: 'Missing bearer token: send the header "Authorization: Bearer <token>" with the gateway\'s SLOTQ_GATEWAY_TOKEN' };
    }
    if (!timingSafeEqual(digest(m[1]), expected)) {
      return { ok: false, message: 'Wrong bearer token: it does not match the gateway\'s SLOTQ_GATEWAY_TOKEN' };
    }
    return { ok: true };
  };
}
