import type { Logger } from 'pino';
import type { SlotqConfig } from '../../shared/config.js';
import { ImageUnusableError, InternalError, toError } from '../../shared/errors.js';
import { LABELS } from '../../shared/keys.js';
import type { ContainerDriver, ContainerSpec } from './container-driver.js';
import { HELPER_DIR, HELPER_MARKER, HELPER_SH, helperBundle } from '../executor/helper-bundle.js';

/** What a worker learned about its image at start: who commands run as, and which shells it has. */
export interface ImageProfile {
  image: string;
  /** Docker's User for the slot containers ('' = the image's default, root). */
  user: string;
  uid: number;
  gid: number;
  /** Extra Env for the containers (HOME when the user's own is not writable). */
  env: string[];
  /** The image's /bin/sh, when it has one: user commands run in it. */
  shell: string | undefined;
  /** The image's bash (first on its PATH), for bash_stateful. */
  bash: string | undefined;
  tmux: string | undefined;
  helperVolume: string;
}

const PULL_TIMEOUT_MS = 15 * 60_000;
const PROBE_TIMEOUT_MS = 30_000;
const PROBE_ATTEMPTS = 3;

/**
 * Runs in a probe container as the slots' user, with slotq's helper on PATH and the image's PATH in $U.
 * Everything here is the helper's busybox: nothing of the image is needed.
 */
const PROBE_SCRIPT = [
  'U=$PATH; PATH=' + `${HELPER_DIR}/bin`,
  'echo "uid=$(id -u)"; echo "gid=$(id -g)"; echo "home=$HOME"',
  // Try a write: busybox's test -w says yes to root even on a read-only filesystem.
  'f="$HOME/.slotq-probe.$$"; [ -n "$HOME" ] && [ -d "$HOME" ] && (: > "$f") 2>/dev/null && rm -f "$f" && echo homew=1',
  `[ -f ${HELPER_DIR}/${HELPER_MARKER} ] && echo helper=1`,
  '[ -x /bin/sh ] && echo sh=/bin/sh',
  'IFS=:; for d in $U; do [ -z "$b" ] && [ -x "$d/bash" ] && b=$d/bash && echo "bash=$b"; [ -z "$t" ] && [ -x "$d/tmux" ] && t=$d/tmux && echo "tmux=$t"; done',
  'true',
].join('\n');

/** Makes sure the image is on the engine, following SLOTQ_PULL; names the image in every failure. */
async function ensureImage(driver: ContainerDriver, c: SlotqConfig, log: Logger): Promise<{ user: string }> {
  let info = c.pull === 'always' ? undefined : await driver.inspectImage(c.image);
  if (!info) {
    const had = c.pull === 'always' ? await driver.inspectImage(c.image) : undefined;
    if (c.pull === 'never') {
      throw new ImageUnusableError(`image ${c.image} is not on this Docker engine and SLOTQ_PULL=never: build or pull it first (slotq's own sandbox: \`bash scripts/build-images.sh\`), or set SLOTQ_IMAGE`);
    }
    log.info({ image: c.image }, 'pulling image');
    try {
      await driver.pullImage(c.image, { timeoutMs: PULL_TIMEOUT_MS, onProgress: (status) => log.debug({ image: c.image, status }, 'pull progress') });
      log.info({ image: c.image }, 'image pulled');
    } catch (err) {
      if (!had) {
        throw new ImageUnusableError(`image ${c.image} is not on this Docker engine and could not be pulled (${toError(err).message}): build it or check its name and registry access (slotq's own sandbox: \`bash scripts/build-images.sh\`)`, { cause: err });
      }
      log.warn({ image: c.image, err: toError(err).message }, 'SLOTQ_PULL=always: pull failed; using the local copy');
    }
    info = await driver.inspectImage(c.image);
    if (!info) throw new ImageUnusableError(`image ${c.image} is still missing after a pull`);
  }
  return { user: info.user };
}

function parseProbe(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0) out.set(line.slice(0, eq), line.slice(eq + 1));
  }
  return out;
}

let warnedNoSpawn = false;

/**
 * Pulls the image if needed, puts slotq's helper in its volume, and probes the image as the slots' user.
 * Fails with one clear line naming the image when it cannot be used.
 */
export async function profileImage(driver: ContainerDriver, c: SlotqConfig, baseSpec: ContainerSpec, log: Logger): Promise<ImageProfile> {
  const { user: imageUser } = await ensureImage(driver, c, log);
  const helper = await helperBundle();
  if (helper.noSpawn && !warnedNoSpawn) {
    warnedNoSpawn = true;
    log.warn({ reason: helper.noSpawn }, "slotq's call launcher is not available: calls work, through the shell's fork and exec, but cost more CPU");
  }
  // Checked by its content's digest every time (filled or refilled when it differs), never trusted by its name or marker.
  await driver.ensureVolume(helper.volume, helper);
  const user = c.user ?? imageUser;
  // No worker label: this worker is not registered yet, and other workers' reapers remove containers of
  // workers they cannot see alive. The lifeline still ends it with this process.
  const labels = Object.fromEntries(Object.entries(baseSpec.labels).filter(([k]) => k !== LABELS.worker));
  const spec: ContainerSpec = { ...baseSpec, user, labels, tmpfs: {}, volumes: [{ name: helper.volume, target: HELPER_DIR, readOnly: true }] };
  for (let attempt = 1; ; attempt++) {
    try {
      return await probe(driver, c.image, user, spec, helper.volume, log);
    } catch (err) {
      if (attempt >= PROBE_ATTEMPTS) throw err instanceof ImageUnusableError ? err : new ImageUnusableError(`image ${c.image}: slotq's probe failed ${PROBE_ATTEMPTS} times: ${toError(err).message}`, { cause: err });
      log.warn({ image: c.image, attempt, err: toError(err).message }, 'image probe failed; retrying');
      await new Promise((r) => setTimeout(r, 250 * attempt));
    }
  }
}

/** One probe container: create it as the slots' user, run PROBE_SCRIPT, remove it. */
async function probe(driver: ContainerDriver, image: string, user: string, spec: ContainerSpec, helperVolume: string, log: Logger): Promise<ImageProfile> {
  let id: string;
  try {
    id = await driver.create(spec);
  } catch (err) {
    throw new ImageUnusableError(`image ${image} cannot run as user ${JSON.stringify(user || 'root')} under runtime ${spec.runtime}: ${toError(err).message}`, { cause: err });
  }
  try {
    const out = await driver.exec(id, [HELPER_SH, '-c', PROBE_SCRIPT], { timeoutMs: PROBE_TIMEOUT_MS });
    const p = parseProbe(out.stdout.toString('utf8'));
    const uid = Number(p.get('uid'));
    const gid = Number(p.get('gid'));
    if (out.exitCode !== 0 || !Number.isInteger(uid) || !Number.isInteger(gid)) {
      throw new InternalError(`exit ${out.exitCode}: ${out.stderr.toString('utf8').trim().slice(0, 300)}`);
    }
    if (p.get('helper') !== '1') throw new InternalError(`slotq's helper volume ${helperVolume} is incomplete`);
    const env = p.get('homew') === '1' ? [] : ['HOME=/tmp'];
    const profile: ImageProfile = { image, user, uid, gid, env, shell: p.get('sh'), bash: p.get('bash'), tmux: p.get('tmux'), helperVolume };
    log.info({ image, user: user || 'root', uid, gid, home: env.length ? '/tmp' : p.get('home'), shell: profile.shell ?? 'none', bash: profile.bash ?? 'none', tmux: profile.tmux ?? 'none' }, 'image profiled');
    if (!profile.shell) log.warn({ image }, 'the image has no /bin/sh: the bash tools will answer that they are not available; files and artifacts work');
    return profile;
  } finally {
    await driver.remove(id).catch((err: unknown) => log.warn({ err: toError(err).message }, 'removing the probe container failed'));
  }
}
