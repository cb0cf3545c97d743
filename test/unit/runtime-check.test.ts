import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/shared/errors.js';
import { checkRuntime } from '../../src/worker/engine/runtime-check.js';

const runc = { path: 'runc', args: [] };
const runsc = { path: '/usr/bin/runsc', args: ['--network=none'] };

describe('checkRuntime: the engine offers the runtime, and the network can work under it', () => {
  it('accepts an offered runtime with no network', () => {
    expect(() => checkRuntime({ runc, runsc }, 'runsc', 'none')).not.toThrow();
    expect(() => checkRuntime({ runc }, 'runc', 'bridge')).not.toThrow();
  });

  it('names the missing runtime and says how to register gVisor in one line', () => {
    let err: unknown;
    try {
      checkRuntime({ runc }, 'runsc', 'none');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    const msg = (err as Error).message;
    expect(msg).toContain('SLOTQ_RUNTIME=runsc');
    expect(msg).toContain('"runtimeArgs":["--network=none"]');
    expect(msg).toContain('/etc/docker/daemon.json');
    expect(msg).toContain('kill -HUP');
    expect(msg).not.toContain('\n');
    expect(() => checkRuntime({ runc }, 'kata', 'none')).toThrow(/no runtime "kata" \(it has: runc\)/);
  });

  it('refuses a network under a gVisor registered with --network=none, and allows one without it', () => {
    expect(() => checkRuntime({ runc, runsc }, 'runsc', 'bridge')).toThrow(/SLOTQ_NETWORK=bridge with SLOTQ_RUNTIME=runsc.*--network=none/);
    expect(() => checkRuntime({ 'runsc-net': { path: '/usr/bin/runsc', args: [] } }, 'runsc-net', 'bridge')).not.toThrow();
    expect(() => checkRuntime({ gv: runsc }, 'gv', 'bridge')).toThrow(ConfigError);
  });
});
