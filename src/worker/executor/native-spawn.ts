import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { lstat, mkdir, mkdtemp, readFile, rename, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

/**
 * The executor's launcher (native/slotq-spawn.c): a small static binary in the helper bundle that starts each
 * call's command with one vfork and exec, where the supervisor's shell would fork and exec twice. It is built
 * once per machine from its source with the machine's C compiler (`cc -static`, cached in a private directory
 * of this user under the temp dir),
 * or taken from SLOTQ_HELPER_SPAWN (a prebuilt static binary; `off` to do without). Without it every call
 * still works, through the shell's own fork and exec (slower): a machine with no compiler loses only speed.
 */
const SOURCE = fileURLToPath(new URL('../../../native/slotq-spawn.c', import.meta.url));

export interface NativeSpawn {
  bin?: Buffer;
  /** Why there is none, for a log line. */
  reason?: string;
}

const run = promisify(execFile);

/**
 * This user's cache directory: 0700 and owned by this user, so no other local user can plant a binary that
 * would run in every slot; else a fresh private directory (no cache).
 */
async function cacheDir(): Promise<string> {
  const uid = process.getuid?.() ?? 0;
  const dir = `${tmpdir()}/slotq-native-${uid}`;
  await mkdir(dir, { mode: 0o700 }).catch(() => undefined);
  const st = await lstat(dir).catch(() => undefined);
  if (st?.isDirectory() && st.uid === uid && (st.mode & 0o077) === 0) return dir;
  return mkdtemp(`${tmpdir()}/slotq-native-`);
}

async function build(source: Buffer, valid: (bin: Buffer) => boolean): Promise<Buffer> {
  const cc = process.env['CC'] || 'cc';
  const digest = createHash('sha256').update(source).update(cc).digest('hex').slice(0, 16);
  const out = `${await cacheDir()}/slotq-spawn-${digest}`;
  const cached = await readFile(out).catch(() => undefined);
  if (cached && valid(cached)) return cached;
  const partial = `${out}.${process.pid}.tmp`;
  try {
    await run(cc, ['-static', '-O2', '-s', '-o', partial, SOURCE], { timeout: 60_000 });
    await rename(partial, out); // atomic: a worker starting alongside reads the whole binary or none
  } finally {
    await rm(partial, { force: true });
  }
  return readFile(out);
}

/** The launcher's binary, or why there is none; `valid` (a static ELF) is also checked again by the caller. */
export async function nativeSpawn(valid: (bin: Buffer) => boolean, setting = process.env['SLOTQ_HELPER_SPAWN']): Promise<NativeSpawn> {
  if (setting === 'off') return { reason: 'SLOTQ_HELPER_SPAWN=off' };
  if (setting) return readFile(setting).then((bin) => ({ bin }), (err: Error) => ({ reason: `SLOTQ_HELPER_SPAWN=${setting}: ${err.message}` }));
  const source = await readFile(SOURCE).catch(() => undefined);
  if (!source) return { reason: `its source ${SOURCE} is missing` };
  return build(source, valid).then(
    (bin) => ({ bin }),
    (err: Error & { stderr?: string }) => ({ reason: `building it with \`${process.env['CC'] || 'cc'} -static\` failed (${(err.stderr || err.message).trim().split('\n').slice(-1)[0]}); install a C compiler and static libc (Debian: gcc libc6-dev) or set SLOTQ_HELPER_SPAWN` }),
  );
}
