import { execFileSync } from 'node:child_process';
import { afterAll, expect, it } from 'vitest';
import { createLogger, loadConfig } from '../../src/index.js';
import type { ContainerSpec } from '../../src/worker/container-driver.js';
import { slotContainerSpec } from '../../src/worker/container-spec.js';
import { DockerDriver } from '../../src/worker/docker-driver.js';
import { HELPER_DIR } from '../../src/worker/helper-bundle.js';
import { profileImage } from '../../src/worker/image-profile.js';
import { uniquePrefix } from '../support/harness.js';

/** Counts helper-volume fills; with `alias`, slotq's helper volume is swapped for that one (empty at first). */
class CountingDriver extends DockerDriver {
  fills = 0;
  constructor(private readonly alias?: string) {
    super();
  }
  override async hasVolume(name: string): Promise<boolean> {
    return this.alias ? true : super.hasVolume(name);
  }
  override async ensureVolume(name: string, tar: Buffer, marker: string, viaImage: string): Promise<void> {
    this.fills++;
    return super.ensureVolume(this.alias ?? name, tar, marker, viaImage);
  }
  override create(spec: ContainerSpec): Promise<string> {
    const alias = this.alias;
    return super.create(alias ? { ...spec, volumes: spec.volumes.map((v) => (v.target === HELPER_DIR ? { ...v, name: alias } : v)) } : spec);
  }
}

const alias = `slotq-test-helper-${uniquePrefix()}`;
afterAll(() => {
  try {
    execFileSync('docker', ['volume', 'rm', '-f', alias], { stdio: 'ignore' });
  } catch {
    // never created
  }
});

it("uses slotq's helper volume as found, and fills one found incomplete (a worker died filling it) before probing again", async () => {
  const config = loadConfig({ prefix: uniquePrefix() });
  const log = createLogger({ level: 'silent' });
  const spec = slotContainerSpec(config, 'helper-volume-test');

  const found = new CountingDriver();
  await profileImage(found, config, spec, log); // the volume exists from here on
  const again = new CountingDriver();
  const profile = await profileImage(again, config, spec, log);
  expect(again.fills).toBe(0);
  expect(profile.shell).toBe('/bin/sh');

  // A volume that exists but is empty: the first probe finds no helper, the volume is filled, the next probe works.
  const empty = new CountingDriver(alias);
  const healed = await profileImage(empty, config, spec, log);
  expect(empty.fills).toBe(1);
  expect(healed).toMatchObject({ uid: profile.uid, gid: profile.gid, shell: '/bin/sh' });
});
