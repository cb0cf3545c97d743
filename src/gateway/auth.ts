import { ConfigError } from '../shared/errors.js';
import { isLoopback } from '../shared/loopback.js';
import { makeTokenMatcher } from '../shared/token-check.js';

export { isLoopback };

/** Without a token the gateway serves loopback only: anything else is refused at start. */
export function checkListenAddress(host: string, token: string | undefined): void {
  if (token === undefined && !isLoopback(host)) {
    throw new ConfigError(
      `Refusing to listen on ${host} without a token: set SLOTQ_GATEWAY_TOKEN (at least 16 characters) or listen on 127.0.0.1 (SLOTQ_GATEWAY_HOST)`,
    );
  }
}

export type AuthOutcome = { ok: true } | { ok: false; message: string };

/**
 * Checks `Authorization: Bearer <token>`. The comparison runs in constant time (SHA-256 digests of
 * equal length through timingSafeEqual, in shared/token-check.ts), so the time taken does not leak how much of a guess was right.
 */
export function makeTokenCheck(token: string): (header: string | undefined) => AuthOutcome {
  const matches = makeTokenMatcher(token);
  return (header) => {
    const m = header === undefined ? null : /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header);
    if (!m?.[1]) {
      return { ok: false, message: 'Missing bearer token: send the header "Authorization: Bearer <token>" with the gateway\'s SLOTQ_GATEWAY_TOKEN' };
    }
    if (!matches(m[1])) {
      return { ok: false, message: 'Wrong bearer token: it does not match the gateway\'s SLOTQ_GATEWAY_TOKEN' };
    }
    return { ok: true };
  };
}

/** Checks SWE-ReX's `X-API-Key: <token>` (what RemoteRuntime sends for its auth_token), in constant time too. */
export function makeApiKeyCheck(token: string): (header: string | string[] | undefined) => boolean {
  const matches = makeTokenMatcher(token);
  return (header) => typeof header === 'string' && matches(header);
}
