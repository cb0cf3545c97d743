import { createHash, timingSafeEqual } from 'node:crypto';

const digest = (s: string): Buffer => createHash('sha256').update(s, 'utf8').digest();

/**
 * A check of presented tokens against one secret, in constant time: both sides are SHA-256 digests (always
 * 32 bytes, whatever the lengths) compared with timingSafeEqual, so the time taken leaks neither how much
 * of a guess was right nor the token's length.
 */
export function makeTokenMatcher(token: string): (presented: string) => boolean {
  const expected = digest(token);
  return (presented) => timingSafeEqual(digest(presented), expected);
}
