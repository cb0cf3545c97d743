/**
 * `npx tsx tools/bench/images.ts [results.json]`: the `images` section of the bench (per-trajectory images,
 * acquire with `image`), merged into results.json. Acquire-to-first-result for an on-demand image: cold
 * (not on the engine), local (on the engine, a container made on demand) and warm (SLOTQ_WARM_PER_IMAGE);
 * then calls/s with 8 distinct images across 32 trajectories.
 *
 * There is no registry on the bench machine: a "pull" tags slotq's busybox test image under the name asked
 * for, so cold measures slotq's own work (pull bookkeeping, probe, container, session), not a network pull.
 */
import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { SlotBackend, SlotWorker, createLogger, type Slot } from '../../src/index.js';
import { randomId } from '../../src/shared/ids.js';
import { DockerDriver } from '../../src/worker/engine/docker-driver.js';
import { DEFAULT_RESULTS_FILE } from './bench.js';
import { round, summarize, type LatencySummary } from './stats.js';

const run = promisify(execFile);
const SOURCE = 'slotq-test-busybox:latest';

class TaggingDriver extends DockerDriver {
  override async pullImage(image: string): Promise<void> {
    await run('docker', ['tag', SOURCE, image]);
  }
}

export interface ImagesBench {
  timestamp: string;
  note: string;
  cold: LatencySummary;
  local: LatencySummary;
  warm: LatencySummary;
  throughput: { images: number; trajectories: number; batches: number; calls: number; failures: number; callsPerS: number };
}

/** Runs the section against a worker and a backend of its own (a fresh prefix); removes the images it tagged. */
export async function benchImages(opts: { redisUrl?: string; rounds?: number; batches?: number } = {}): Promise<ImagesBench> {
  const redisUrl = opts.redisUrl ?? process.env['REDIS_URL'] ?? 'redis://127.0.0.1:6379';
  const rounds = opts.rounds ?? 5;
  const prefix = `bimg${randomId(3)}`;
  const tag = `slotq-bench-img-${randomId(3)}`;
  const tagged: string[] = [];
  const logger = createLogger({ level: 'warn', name: 'slotq-bench-images' });
  const worker = new SlotWorker({ redisUrl, prefix, slots: 1, warmSpares: 0, images: `${tag}-*`, ondemandSlots: 32, warmPerImage: 0, logger, driver: new TaggingDriver() });
  const warmWorker = new SlotWorker({ redisUrl, prefix: `${prefix}w`, slots: 1, warmSpares: 0, images: `${tag}-*`, ondemandSlots: 4, warmPerImage: 1, logger, driver: new TaggingDriver() });
  const backend = new SlotBackend({ redisUrl, prefix, logger });
  const warmBackend = new SlotBackend({ redisUrl, prefix: `${prefix}w`, logger });
  const firstResult = async (b: SlotBackend, trajectoryId: string, image: string): Promise<{ ms: number; slot: Slot }> => {
    const t0 = performance.now();
    const slot = await b.acquire(trajectoryId, { image, timeoutMs: 120_000 });
    const [r] = await b.executeBatch([[slot, 'bash', { command: 'echo hi' }]]);
    if (!r?.success) throw new Error(`first call failed: ${r?.error}`);
    return { ms: performance.now() - t0, slot };
  };
  try {
    await Promise.all([worker.start(), warmWorker.start(), backend.start(), warmBackend.start()]);
    const cold: number[] = [];
    const local: number[] = [];
    for (let i = 0; i < rounds; i++) {
      const image = `${tag}-cold${i}:latest`;
      tagged.push(image);
      const c = await firstResult(backend, `cold-${i}`, image);
      cold.push(c.ms);
      await backend.release(c.slot);
      const l = await firstResult(backend, `local-${i}`, image); // on the engine and profiled: a container made on demand
      local.push(l.ms);
      await backend.release(l.slot);
    }
    const warmImage = `${tag}-warm:latest`;
    tagged.push(warmImage);
    await warmBackend.release((await firstResult(warmBackend, 'warm-seed', warmImage)).slot);
    const warm: number[] = [];
    for (let i = 0; i < rounds; i++) {
      await waitWarm(warmBackend, warmImage); // the released container's replacement is ready
      const w = await firstResult(warmBackend, `warm-${i}`, warmImage);
      warm.push(w.ms);
      await warmBackend.release(w.slot);
    }
    const throughput = await manyImages(backend, tag, tagged, opts.batches ?? 50);
    return { timestamp: new Date().toISOString(), note: 'no registry: a cold "pull" tags a local busybox image; cold and local include probing the image and starting its container', cold: summarize(cold), local: summarize(local), warm: summarize(warm), throughput };
  } finally {
    await Promise.all([backend.stop({ purge: true }), warmBackend.stop({ purge: true })]);
    await Promise.all([worker.stop(), warmWorker.stop()]);
    for (const image of tagged) await run('docker', ['rmi', '-f', image]).catch(() => undefined);
  }
}

/** Polls (short acquire timeouts) until a warm container of the image is ready, then gives it back. */
async function waitWarm(b: SlotBackend, image: string): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    const slot = await b.acquire(`probe-${randomId(3)}`, { image, timeoutMs: 50 }).catch(() => undefined);
    if (slot) return void (await b.release(slot));
  }
  throw new Error(`no warm container of ${image} within 60 s`);
}

/** 32 trajectories on 8 images, one call each per batch, batches back to back. */
async function manyImages(b: SlotBackend, tag: string, tagged: string[], batches: number): Promise<ImagesBench['throughput']> {
  const images = Array.from({ length: 8 }, (_, i) => `${tag}-many${i}:latest`);
  tagged.push(...images);
  const slots = await Promise.all(Array.from({ length: 32 }, (_, i) => b.acquire(`many-${i}`, { image: images[i % 8]!, timeoutMs: 300_000 })));
  let failures = 0;
  let calls = 0;
  await b.executeBatch(slots.map((s) => [s, 'bash', { command: 'echo hi' }] as const)); // warm-up
  const t0 = performance.now();
  for (let i = 0; i < batches; i++) {
    const results = await b.executeBatch(slots.map((s) => [s, 'bash', { command: 'echo hi' }] as const));
    calls += results.length;
    failures += results.filter((r) => !r.success).length;
  }
  const s = (performance.now() - t0) / 1000;
  for (const slot of slots) await b.release(slot);
  return { images: 8, trajectories: 32, batches, calls, failures, callsPerS: round((calls - failures) / s, 1) };
}

if (process.argv[1]?.endsWith('images.ts')) {
  const out = process.argv[2] ?? DEFAULT_RESULTS_FILE;
  benchImages()
    .then(async (images) => {
      const results = JSON.parse(await readFile(out, 'utf8').catch(() => '{}')) as Record<string, unknown>;
      await writeFile(out, `${JSON.stringify({ ...results, images }, null, 2)}\n`);
      console.log(JSON.stringify(images, null, 2));
      process.exit(0); // dockerode's agent keeps sockets open
    })
    .catch((err: unknown) => {
      console.error(`bench images: ${err instanceof Error ? err.message : String(err)}`);
      process.exit(1);
    });
}
