import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { pack } from 'tar-stream';
import { ImageUnusableError } from '../../shared/errors.js';
import { treeDigest } from './helper-digest.js';
import { nativeSpawn } from './native-spawn.js';

/**
 * slotq's own machinery in every slot needs nothing from the image: a static busybox, mounted read-only
 * at HELPER_DIR (like Docker's --init mounts its init), runs the executor, path checks, hashing, listing
 * and archiving. See docs/any-image.md.
 */
export const HELPER_DIR = '/.slotq';
export const HELPER_BIN = `${HELPER_DIR}/bin`;
export const HELPER_SH = `${HELPER_BIN}/sh`;
/** Written last into the helper volume (the probe checks it); the volume is trusted by its digest (helper-digest.ts), not by this. */
export const HELPER_MARKER = 'complete';

/** Where a static busybox is looked for (Debian's busybox-static installs /bin/busybox). */
const CANDIDATES = ['/bin/busybox', '/usr/bin/busybox', '/usr/local/bin/busybox'];

export interface HelperBundle {
  /** Docker volume that holds it; named by content, so workers of one host share it. */
  volume: string;
  /** tar of bin/busybox, one symlink per applet, and the marker. */
  tar: Buffer;
  /** treeDigest of the tar: what the helper volume must hash to before any slot mounts it. */
  digest: string;
  applets: number;
  /** Why the bundle has no launcher (native-spawn.ts): calls then fork and exec from the shell, slower. */
  noSpawn?: string;
}

/** True when an ELF binary has no program interpreter (PT_INTERP), i.e. it runs with no libc in the image. */
export function isStaticElf(bin: Buffer): boolean {
  if (bin.length < 64 || bin.readUInt32BE(0) !== 0x7f454c46) return false;
  const is64 = bin[4] === 2;
  const le = bin[5] === 1;
  const u16 = (o: number): number => (le ? bin.readUInt16LE(o) : bin.readUInt16BE(o));
  const u32 = (o: number): number => (le ? bin.readUInt32LE(o) : bin.readUInt32BE(o));
  const phoff = is64 ? Number(le ? bin.readBigUInt64LE(32) : bin.readBigUInt64BE(32)) : u32(28);
  const phentsize = u16(is64 ? 54 : 42);
  const phnum = u16(is64 ? 56 : 44);
  for (let i = 0; i < phnum; i++) {
    const at = phoff + i * phentsize;
    if (at + 4 > bin.length) return false;
    if (u32(at) === 3) return false; // PT_INTERP: dynamically linked
  }
  return true;
}

function findBusybox(explicit: string | undefined): { path: string; bin: Buffer } {
  const tried: string[] = [];
  for (const path of explicit ? [explicit] : CANDIDATES) {
    let bin: Buffer;
    try {
      bin = readFileSync(path);
    } catch {
      tried.push(`${path} (missing)`);
      continue;
    }
    if (isStaticElf(bin)) return { path, bin };
    tried.push(`${path} (not statically linked)`);
  }
  throw new ImageUnusableError(
    `slotq needs a static busybox on the worker's machine to run its executor in any image; tried ${tried.join(', ')}. ` +
      'Install it (`apt-get install busybox-static` on Debian/Ubuntu, `apk add busybox-static` on Alpine) or set SLOTQ_HELPER_BUSYBOX to one.',
  );
}

let cached: HelperBundle | undefined;

/** Builds (once per process) the helper tar from the worker machine's static busybox. */
export async function helperBundle(explicitPath = process.env['SLOTQ_HELPER_BUSYBOX']): Promise<HelperBundle> {
  if (cached) return cached;
  const { path, bin } = findBusybox(explicitPath || undefined);
  const applets = execFileSync(path, ['--list'], { encoding: 'utf8' })
    .split('\n')
    .map((a) => a.trim())
    .filter((a) => /^[a-z0-9_.[-]+$/i.test(a) && a !== 'busybox');
  const p = pack();
  const chunks: Buffer[] = [];
  p.on('data', (c: unknown) => void chunks.push(c as Buffer));
  const done = new Promise<void>((resolve, reject) => (p.on('end', resolve), p.on('error', reject)));
  const mtime = new Date(0);
  p.entry({ name: 'bin', type: 'directory', mode: 0o755, mtime });
  p.entry({ name: 'bin/busybox', mode: 0o755, mtime }, bin);
  for (const a of applets) p.entry({ name: `bin/${a}`, type: 'symlink', linkname: 'busybox', mode: 0o777, mtime });
  const spawn = await nativeSpawn(isStaticElf);
  const spawnBin = spawn.bin && isStaticElf(spawn.bin) ? spawn.bin : undefined;
  if (spawnBin) p.entry({ name: 'bin/slotq-spawn', mode: 0o755, mtime }, spawnBin);
  p.entry({ name: HELPER_MARKER, mode: 0o644, mtime }, 'slotq helper\n');
  p.finalize();
  await done;
  const digest = createHash('sha256').update(bin).update(applets.join(',')).update(spawnBin ?? '').digest('hex').slice(0, 16);
  const noSpawn = spawnBin ? undefined : (spawn.reason ?? 'the launcher binary is not statically linked');
  const tar = Buffer.concat(chunks);
  cached = { volume: `slotq-helper-${digest}`, tar, digest: await treeDigest(tar), applets: applets.length, ...(noSpawn ? { noSpawn } : {}) };
  return cached;
}
