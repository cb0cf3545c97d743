import * as crypto from 'node:crypto';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { makeTokenMatcher } from '../../src/shared/token-check.js';

vi.mock('node:crypto', async (importOriginal) => {
  const real = await importOriginal<typeof crypto>();
  return { ...real, timingSafeEqual: vi.fn(real.timingSafeEqual) };
});

const TOKEN = 'a-token-of-at-least-16-chars';

describe('makeTokenMatcher', () => {
  afterEach(() => vi.mocked(crypto.timingSafeEqual).mockClear());

  it('accepts the token and refuses others', () => {
    const matches = makeTokenMatcher(TOKEN);
    expect(matches(TOKEN)).toBe(true);
    for (const other of ['', 'x', TOKEN.slice(0, -1), `${TOKEN}x`, TOKEN.toUpperCase()]) expect(matches(other), other).toBe(false);
  });

  it('compares through timingSafeEqual on 32-byte digests, for a guess of any length (no early return, no ===)', () => {
    const spy = vi.mocked(crypto.timingSafeEqual);
    const matches = makeTokenMatcher(TOKEN);
    for (const guess of ['', 'x', `${TOKEN}-much-longer-than-the-token`, TOKEN.replace(/.$/, 'Z'), TOKEN]) {
      spy.mockClear();
      matches(guess);
      expect(spy, guess).toHaveBeenCalledTimes(1);
      const [a, b] = spy.mock.calls[0]!;
      expect([(a as Buffer).length, (b as Buffer).length], guess).toEqual([32, 32]);
    }
  });
});
