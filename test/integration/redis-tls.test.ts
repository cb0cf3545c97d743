import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { redisBehaviour } from '../support/redis-behaviour.js';
import { startTlsRedis } from '../support/redis-servers.js';

/** The ACL of a worker or a producer for the keys `keys` (docs/redis-production.md, "Minimal ACL"). */
const aclRules = (keys: string): string[] =>
  ['resetkeys', `~${keys}`, 'resetchannels', '-@all', '+@read', '+@write', '+@blocking', '+@transaction', '+@connection', '-@dangerous', '+info', '+time', '+eval', '+evalsha', '+script|load', '+client|setname', '+cluster|slots', '+cluster|info'];

/**
 * slotq on a Redis that speaks only TLS and wants a password: `rediss://:password@host:port`, with the
 * server's certificate signed by a CA made in this test (SLOTQ_REDIS_TLS_CA points at it).
 */
describe('on a TLS Redis with a password', () => {
  redisBehaviour(
    () => startTlsRedis('tls-test-password'),
    (r) => ({ redisTlsCa: r.env['SLOTQ_REDIS_TLS_CA'] ?? '' }),
  );
});

/** The same, connected as the least-privilege ACL user docs/redis-production.md documents (test prefixes start with t). */
describe('on a TLS Redis, as the documented minimal ACL user', () => {
  redisBehaviour(
    () => startTlsRedis('tls-test-password', { name: 'slotq', password: 'acl-test-password', rules: aclRules('{t*}:*') }),
    (r) => ({ redisTlsCa: r.env['SLOTQ_REDIS_TLS_CA'] ?? '' }),
  );

  it('is the ACL docs/redis-production.md documents', () => {
    const page = readFileSync(new URL('../../docs/redis-production.md', import.meta.url), 'utf8');
    expect(page).toContain(`ACL SETUSER slotq on >PASSWORD ${aclRules('{slotq}:*').join(' ')}`);
  });
});
