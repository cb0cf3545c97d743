import { describe } from 'vitest';
import { redisBehaviour } from '../support/redis-behaviour.js';
import { startTlsRedis } from '../support/redis-servers.js';

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
