import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, readFile, rename, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

/**
 * The executor's launcher (native/slotq-spawn.c): a small static binary in the helper bundle that starts each
 * call's command with one posix_spawn, where the supervisor's shell would fork and exec twice. It is built
 * once per machine from its source with the machine's C compiler (`cc -static`, cached under the temp dir),
 * or taken from SLOTQ_HELPER_SPAWN (a prebuilt static binary; `off` to do without). Without it every call
 * still works, through the shell's own fork and exec (slower): a machine with no compiler loses only speed.
 */
const SOURCE = fileURLToPath(new URL('../../native/slotq-spawn.c', import.meta.url));

export interface NativeSpawn {
  bin?: Buffer;
  /** Why there is none, for a log line. */
  reason?: string;
}

const run = promisify(execFile);

async function build(source: Buffer): Promise<Buffer> {
  const cc = process.env['CC'] || 'cc';
  const digest = createHash('sha256').update(source).update(cc).digest('hex').slice(0, 16);
  const dir = `${tmpdir()}/slotq-native-${digest}`;
  const out = `${dir}/slotq-spawn`;
  const cached = await readFile(out).catch(() => undefined);
  if (cached) return cached;
  await mkdir(dir, { recursive: true });
  const partial = `${out}.${process.pid}.tmp`;
  try {
    await run(cc, ['-static', '-O2', '-s', '-o', partial, SOURCE], { timeout: 60_000 });
    await rename(partial, out); // atomic: a worker starting alongside reads the whole binary or none
  } finally {
    await rm(partial, { force: true });
  }
  return readFile(out);
}

/** The launcher's binary, or why there is none. Static linking is checked by the caller. */
export async function nativeSpawn(setting = process.env['SLOTQ_HELPER_SPAWN']): Promise<NativeSpawn> {
  if (setting === 'off') return { reason: 'SLOTQ_HELPER_SPAWN=off' };
  if (setting) return readFile(setting).then((bin) => ({ bin }), (err: Error) => ({ reason: `SLOTQ_HELPER_SPAWN=${setting}: ${err.message}` }));
  const source = await readFile(SOURCE).catch(() => undefined);
  if (!source) return { reason: `its source ${SOURCE} is missing` };
  return build(source).then(
    (bin) => ({ bin }),
    (err: Error & { stderr?: string }) => ({ reason: `building it with \`${process.env['CC'] || 'cc'} -static\` failed (${(err.stderr || err.message).trim().split('\n').slice(-1)[0]}); install a C compiler and static libc (Debian: gcc libc6-dev) or set SLOTQ_HELPER_SPAWN` }),
  );
}
