import { describe, expect, it } from 'vitest';
import { isLoopback as boardIsLoopback } from '../../src/cli/board/board-access.js';
import { isLoopback as gatewayIsLoopback } from '../../src/gateway/auth.js';
import { isLoopback } from '../../src/shared/loopback.js';

describe('isLoopback', () => {
  it('takes 127.0.0.0/8, ::1, ::ffff:127.x and localhost, bracketed or not', () => {
    for (const host of ['127.0.0.1', '127.1.2.3', '127.255.255.255', 'localhost', 'LOCALHOST', '::1', '[::1]', '0:0:0:0:0:0:0:1', '::ffff:127.0.0.1', '[::ffff:127.9.9.9]', '::ffff:7f00:1'])
      expect(isLoopback(host), host).toBe(true);
  });
  it('refuses every other address and any name but localhost', () => {
    for (const host of ['0.0.0.0', '::', '10.0.0.5', '128.0.0.1', '126.255.255.255', '192.168.1.2', '::2', '::ffff:10.0.0.1', '::ffff:128.0.0.1', 'example.com', '127.0.0.1.example.com', '127.1', '[127.0.0.1', ''])
      expect(isLoopback(host), host).toBe(false);
  });
  it('is the one function the gateway and the board use', () => {
    expect(gatewayIsLoopback).toBe(isLoopback);
    expect(boardIsLoopback).toBe(isLoopback);
  });
});
