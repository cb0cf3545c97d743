import { describe, expect, it } from 'vitest';
import { CONFIG_ENV_VARS, ConfigError, loadConfig } from '../../src/index.js';
import { runtimeFor } from '../../src/shared/config.js';
import { connectRedis } from '../../src/shared/redis.js';

const configError = (fn: () => unknown): ConfigError => {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error('expected a ConfigError, nothing was thrown');
};

describe('loadConfig', () => {
  it('has the documented defaults with an empty environment', () => {
    expect(loadConfig({}, {})).toMatchObject({
      redisUrl: 'redis://127.0.0.1:6379',
      prefix: 'slotq',
      image: 'slotq-sandbox:latest',
      slots: 4,
      network: 'none',
      memoryMb: 2048,
      workspaceMb: 1024,
      tmpMb: 256,
      rootfsMb: 2048,
      cpus: 1,
      pids: 256,
      defaultTimeoutS: 30,
      logLevel: 'info',
      boardPort: 3000,
    });
  });

  it('parses environment variables into typed values', () => {
    const c = loadConfig(
      {},
      {
        REDIS_URL: 'rediss://:s3cret@redis.example:6380/2',
        SLOTQ_PREFIX: 'train-1.a_b',
        SLOTQ_IMAGE: 'my/sandbox:v2',
        SLOTQ_SLOTS: '8',
        SLOTQ_NETWORK: 'bridge',
        SLOTQ_MEMORY_MB: '2048',
        SLOTQ_CPUS: '0.5',
        SLOTQ_PIDS: '512',
        SLOTQ_DEFAULT_TIMEOUT_S: '120',
        SLOTQ_LOG_LEVEL: 'debug',
        SLOTQ_BOARD_PORT: '0',
      },
    );
    expect(c).toMatchObject({
      redisUrl: 'rediss://:s3cret@redis.example:6380/2',
      prefix: 'train-1.a_b',
      image: 'my/sandbox:v2',
      slots: 8,
      network: 'bridge',
      memoryMb: 2048,
      cpus: 0.5,
      pids: 512,
      defaultTimeoutS: 120,
      logLevel: 'debug',
      boardPort: 0,
    });
    expect(typeof c.slots).toBe('number');
  });

  it('treats an empty variable as unset', () => {
    expect(loadConfig({}, { SLOTQ_SLOTS: '', REDIS_URL: '' })).toMatchObject({ slots: 4, redisUrl: 'redis://127.0.0.1:6379' });
  });

  it('lets options win over the environment', () => {
    const env = { SLOTQ_SLOTS: '8', SLOTQ_PREFIX: 'fromenv', REDIS_URL: 'redis://env:1' };
    expect(loadConfig({ slots: 2, prefix: 'fromopt' }, env)).toMatchObject({ slots: 2, prefix: 'fromopt', redisUrl: 'redis://env:1' });
    // An option also shadows an invalid variable of the same setting.
    expect(loadConfig({ slots: 3 }, { SLOTQ_SLOTS: 'abc' }).slots).toBe(3);
  });

  it('reads process.env when no env is given', () => {
    const before = process.env['SLOTQ_SLOTS'];
    process.env['SLOTQ_SLOTS'] = '7';
    try {
      expect(loadConfig().slots).toBe(7);
    } finally {
      if (before === undefined) delete process.env['SLOTQ_SLOTS'];
      else process.env['SLOTQ_SLOTS'] = before;
    }
  });

  it('returns a frozen object', () => {
    expect(Object.isFrozen(loadConfig({}, {}))).toBe(true);
  });

  it.each([
    ['SLOTQ_SLOTS', 'abc'],
    ['SLOTQ_SLOTS', '0'],
    ['SLOTQ_SLOTS', '1.5'],
    ['SLOTQ_SLOTS', '-3'],
    ['REDIS_URL', 'http://x'],
    ['REDIS_URL', 'localhost:6379'],
    ['SLOTQ_PREFIX', 'has:colon'],
    ['SLOTQ_PREFIX', 'has space'],
    ['SLOTQ_CPUS', '0'],
    ['SLOTQ_MEMORY_MB', 'lots'],
    ['SLOTQ_PIDS', '1'],
    ['SLOTQ_DEFAULT_TIMEOUT_S', '0'],
    ['SLOTQ_DEFAULT_TIMEOUT_S', '100000'],
    ['SLOTQ_LOG_LEVEL', 'loud'],
    ['SLOTQ_BOARD_PORT', '70000'],
  ])('throws a ConfigError naming %s for %j', (name, value) => {
    const err = configError(() => loadConfig({}, { [name]: value }));
    expect(err.message).toContain(name);
    expect(err.message).toContain(value);
  });

  it('names the option, not a variable, when an option is invalid', () => {
    const err = configError(() => loadConfig({ slots: -1 }, {}));
    expect(err.message).toContain('slots');
    expect(err.message).not.toContain('SLOTQ_SLOTS');
    expect(configError(() => loadConfig({ redisUrl: 'http://x' }, {})).message).toContain('redisUrl');
  });

  it('reads the runtime and the per-image runtimes (SLOTQ_RUNTIME, SLOTQ_RUNTIME_BY_IMAGE)', () => {
    expect(loadConfig({}, {})).toMatchObject({ runtime: 'runc', runtimeByImage: {} });
    const c = loadConfig({}, { SLOTQ_RUNTIME: 'runsc', SLOTQ_RUNTIME_BY_IMAGE: 'python:3.12=runc, registry.local:5000/a/b:v1=kata' });
    expect(c.runtimeByImage).toEqual({ 'python:3.12': 'runc', 'registry.local:5000/a/b:v1': 'kata' });
    expect(runtimeFor(c, 'python:3.12')).toBe('runc');
    expect(runtimeFor(c, 'other:1')).toBe('runsc');
    expect(runtimeFor(loadConfig({ runtimeByImage: { 'x:1': 'runsc' } }, {}), 'x:1')).toBe('runsc');
    expect(configError(() => loadConfig({}, { SLOTQ_RUNTIME_BY_IMAGE: 'python:3.12' })).message).toContain('SLOTQ_RUNTIME_BY_IMAGE');
    expect(configError(() => loadConfig({}, { SLOTQ_RUNTIME: 'run sc' })).message).toContain('SLOTQ_RUNTIME');
  });

  it('reads the call channel (SLOTQ_CHANNEL, SLOTQ_CHANNEL_DIR, SLOTQ_CHANNEL_HOST_DIR)', () => {
    expect(loadConfig({}, {})).toMatchObject({ channel: 'fifo', channelDir: '/tmp/slotq-channels' });
    expect(loadConfig({}, {}).channelHostDir).toBeUndefined();
    expect(loadConfig({}, { SLOTQ_CHANNEL: 'stream', SLOTQ_CHANNEL_DIR: '/run/ch', SLOTQ_CHANNEL_HOST_DIR: '/var/lib/ch' })).toMatchObject({ channel: 'stream', channelDir: '/run/ch', channelHostDir: '/var/lib/ch' });
    expect(configError(() => loadConfig({}, { SLOTQ_CHANNEL: 'socket' })).message).toContain('SLOTQ_CHANNEL');
    expect(configError(() => loadConfig({}, { SLOTQ_CHANNEL_DIR: 'relative/dir' })).message).toContain('SLOTQ_CHANNEL_DIR');
  });

  it('maps every setting to its environment variable', () => {
    expect(CONFIG_ENV_VARS).toMatchObject({
      redisUrl: 'REDIS_URL',
      prefix: 'SLOTQ_PREFIX',
      image: 'SLOTQ_IMAGE',
      slots: 'SLOTQ_SLOTS',
      network: 'SLOTQ_NETWORK',
      memoryMb: 'SLOTQ_MEMORY_MB',
      workspaceMb: 'SLOTQ_WORKSPACE_MB',
      tmpMb: 'SLOTQ_TMP_MB',
      rootfsMb: 'SLOTQ_ROOTFS_MB',
      cpus: 'SLOTQ_CPUS',
      pids: 'SLOTQ_PIDS',
      defaultTimeoutS: 'SLOTQ_DEFAULT_TIMEOUT_S',
      logLevel: 'SLOTQ_LOG_LEVEL',
      boardPort: 'SLOTQ_BOARD_PORT',
    });
  });
});

describe('Redis Sentinel settings', () => {
  it('parses SLOTQ_REDIS_SENTINELS into addresses, with the documented defaults for the rest', () => {
    const c = loadConfig({}, { SLOTQ_REDIS_SENTINELS: '10.0.0.1:26379, sentinel-b:26380', SLOTQ_REDIS_SENTINEL_PASSWORD: 'pw', SLOTQ_REDIS_SENTINEL_TLS: 'true' });
    expect(c).toMatchObject({ redisSentinels: [{ host: '10.0.0.1', port: 26379 }, { host: 'sentinel-b', port: 26380 }], redisSentinelName: 'mymaster', redisSentinelPassword: 'pw', redisSentinelTls: true });
    expect(loadConfig({}, {})).toMatchObject({ redisSentinels: undefined, redisSentinelTls: false });
    // A parsed config passed on as options (the CLI does) parses again to the same.
    expect(loadConfig({ redisSentinels: c.redisSentinels }, {}).redisSentinels).toEqual(c.redisSentinels);
  });

  it('names the variable when the list is not host:port pairs', () => {
    expect(configError(() => loadConfig({}, { SLOTQ_REDIS_SENTINELS: '10.0.0.1' })).message).toMatch(/SLOTQ_REDIS_SENTINELS.*host:port pairs/);
    expect(configError(() => loadConfig({}, { SLOTQ_REDIS_SENTINEL_NAME: 'my master' })).message).toMatch(/SLOTQ_REDIS_SENTINEL_NAME/);
  });

  it('refuses Sentinel together with a Redis Cluster', () => {
    const config = loadConfig({ redisSentinels: '127.0.0.1:26379', redisCluster: true }, {});
    expect(configError(() => connectRedis(config)).message).toMatch(/not a Redis Cluster/);
  });
});
