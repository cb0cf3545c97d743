import { execFileSync } from 'node:child_process';
import { afterAll, afterEach, expect, it } from 'vitest';
import { createLogger, loadConfig } from '../../src/index.js';
import type { ContainerSpec, VolumeContent } from '../../src/worker/engine/container-driver.js';
import { slotContainerSpec } from '../../src/worker/engine/container-spec.js';
import { DockerDriver } from '../../src/worker/engine/docker-driver.js';
import { HELPER_DIR, helperBundle } from '../../src/worker/executor/helper-bundle.js';
import { treeDigest } from '../../src/worker/executor/helper-digest.js';
import { profileImage } from '../../src/worker/engine/image-profile.js';
import { uniquePrefix } from '../support/harness.js';

/** slotq's helper volume swapped for `alias` (this test's own, empty at first): what it fills and what its probe mounts. */
class AliasDriver extends DockerDriver {
  constructor(private readonly alias: string) {
    super();
  }
  override ensureVolume(_name: string, content: VolumeContent): Promise<void> {
    return super.ensureVolume(this.alias, content);
  }
  override create(spec: ContainerSpec): Promise<string> {
    return super.create({ ...spec, volumes: spec.volumes.map((v) => (v.target === HELPER_DIR ? { ...v, name: this.alias } : v)) });
  }
}

const alias = `slotq-test-helper-${uniquePrefix()}`;
const config = loadConfig({ prefix: uniquePrefix() });
const log = createLogger({ level: 'silent' });
const spec = slotContainerSpec(config, 'helper-volume-test');
const docker = (...args: string[]): Buffer => execFileSync('docker', args, { timeout: 60_000, maxBuffer: 64 * 1024 * 1024 });
/** Runs a script with the volume's own busybox, in a throwaway container that mounts the volume read-write. */
const inVolume = (script: string): string => docker('run', '--rm', '--network', 'none', '--user', '0', '-v', `${alias}:/v`, '--entrypoint', '/v/bin/sh', config.image, '-c', script).toString();
/** The digest of what the volume holds now, read by a tar of it. */
const volumeDigest = async (): Promise<string> => treeDigest(docker('run', '--rm', '--network', 'none', '-v', `${alias}:/v:ro`, '--entrypoint', '/v/bin/tar', config.image, '-C', '/v', '-cf', '-', '.'));
let user: string | undefined;

afterEach(() => {
  if (user) docker('rm', '-f', user);
  user = undefined;
});
afterAll(() => {
  try {
    docker('volume', 'rm', '-f', alias);
  } catch {
    // never created
  }
});

it('fills an empty helper volume (NoCopy, from its own image) and finds it holding exactly the bundle', async () => {
  const profile = await profileImage(new AliasDriver(alias), config, spec, log);
  expect(profile.shell).toBe('/bin/sh');
  expect(await volumeDigest()).toBe((await helperBundle()).digest);
  // Used again as found: it verifies.
  expect(await profileImage(new AliasDriver(alias), config, spec, log)).toMatchObject({ uid: profile.uid, shell: '/bin/sh' });
});

it.each([
  // What a marker check accepted: the marker is there, the probe still works, the tools are not slotq's.
  ['a changed tool, an added file, a grown busybox', 'cd /v/bin && rm sha256sum && printf "#!/v/bin/sh\\necho 0 -\\n" > sha256sum && chmod 755 sha256sum && echo evil > /v/extra && cp busybox b2 && printf x >> b2 && mv b2 busybox'],
  ['half filled (a worker died filling it): no marker, an applet missing', 'rm /v/complete /v/bin/ls'],
])('a helper volume found %s is refilled before any slot mounts it', async (_, tamper) => {
  await profileImage(new AliasDriver(alias), config, spec, log);
  inVolume(tamper);
  expect(await volumeDigest()).not.toBe((await helperBundle()).digest);
  const profile = await profileImage(new AliasDriver(alias), config, spec, log);
  expect(profile.shell).toBe('/bin/sh');
  expect(await volumeDigest()).toBe((await helperBundle()).digest);
  expect(inVolume('readlink /v/bin/sha256sum; [ -e /v/extra ] || echo no-extra; [ -f /v/complete ] && echo complete')).toBe('busybox\nno-extra\ncomplete\n');
});

it('a changed helper volume that containers still use is refused with a clear error, never mounted as is', async () => {
  await profileImage(new AliasDriver(alias), config, spec, log);
  inVolume('echo evil > /v/extra');
  user = docker('create', '--network', 'none', '-v', `${alias}:/v:ro`, config.image, 'true').toString().trim();
  await expect(profileImage(new AliasDriver(alias), config, spec, log)).rejects.toMatchObject({ code: 'INVALID_ARGS', name: 'ImageUnusableError', message: expect.stringMatching(/does not hold slotq's helper .* containers use it/) as unknown });
});

it('workers filling one empty helper volume at once all get it verified (none empties it under another)', async () => {
  docker('volume', 'rm', '-f', alias);
  const bundle = await helperBundle();
  await Promise.all(Array.from({ length: 3 }, () => new DockerDriver().ensureVolume(alias, bundle)));
  expect(await volumeDigest()).toBe(bundle.digest);
});
