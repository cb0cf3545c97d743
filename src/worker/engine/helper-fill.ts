import type { VolumeContent } from './container-driver.js';
import { statusOf } from './engine-status.js';
import { ImageUnusableError, toError } from '../../shared/errors.js';
import { EMPTY_TREE_DIGEST, FILL_IMAGE, FILL_MOUNT, fillImageTar, treeDigest } from '../executor/helper-digest.js';

/** The label of the helper volume and of its fill containers. */
export const HELPER_LABEL = 'org.slotq.helper';
/** Rounds of check, fill or wait on the helper volume (250 ms apart while another worker fills it). */
const FILL_ROUNDS = 80;
/** A fill container older than this belongs to a worker that died filling. */
const STALE_FILLER_S = 60;

/** A never-started fill container, the volume mounted at FILL_MOUNT. */
export interface FillContainer {
  getArchive(path: string): Promise<NodeJS.ReadableStream>;
  putArchive(tar: Buffer, path: string): Promise<void>;
}

/** What the helper-volume fill asks of the engine (the container driver's dockerode calls). */
export interface HelperFillEngine {
  imageExists(image: string): Promise<boolean>;
  /** Imports an image from its tar; the engine's progress text. */
  importImage(tar: Buffer, repo: string, tag: string): Promise<string>;
  hasVolume(name: string): Promise<boolean>;
  /** Creates the volume with HELPER_LABEL. */
  createVolume(name: string): Promise<void>;
  /** Removes the volume; the engine's error (with its statusCode) thrown. */
  removeVolume(name: string): Promise<void>;
  /** Runs fn on a fill container of the volume (created with HELPER_LABEL, removed after). */
  withFiller<T>(volume: string, fn: (c: FillContainer) => Promise<T>): Promise<T>;
  /** Fill containers (HELPER_LABEL) holding the volume. */
  fillersOf(volume: string): Promise<number>;
  /** Never-started fill containers (HELPER_LABEL, status created): ids and creation times in seconds. */
  createdFillers(): Promise<Array<{ id: string; createdS: number }>>;
  removeContainer(id: string): Promise<void>;
}

/**
 * Fills and checks the helper volume through a never-started container of FILL_IMAGE (an empty /v that
 * slotq imports itself), the volume mounted NoCopy so no image content lands in it. The volume is used
 * only when its tree's digest is the bundle's; otherwise it is emptied (removed and made anew) and filled.
 */
export async function fillHelperVolume(engine: HelperFillEngine, name: string, content: VolumeContent): Promise<void> {
  await importFillImage(engine);
  const othersFilling = async (): Promise<boolean> => (await engine.fillersOf(name)) > 0;
  let previous: string | undefined;
  let fillError: unknown;
  for (let round = 0; round < FILL_ROUNDS; round++) {
    await removeStaleFillers(engine);
    if (!(await engine.hasVolume(name))) await engine.createVolume(name);
    const found = await engine.withFiller(name, async (c) => {
      // getArchive, read to its end: a HEAD (infoArchive) left its socket open and the process alive.
      const read = async (): Promise<string> => treeDigest(await c.getArchive(FILL_MOUNT), FILL_MOUNT.slice(1));
      const digest = await read();
      if (digest !== EMPTY_TREE_DIGEST) return digest;
      // Another worker that found it empty too may be filling it now ("file exists"): look again.
      const filled = await c.putArchive(content.tar, FILL_MOUNT).then(
        () => true,
        (err: unknown) => ((fillError = err), false),
      );
      return filled ? read() : undefined;
    });
    if (found === content.digest) return;
    if (found === undefined) {
      await new Promise((r) => setTimeout(r, 250));
      continue;
    }
    // Tampered, half filled by a worker that died, or being filled right now by another worker: emptied
    // only when no one else fills it and it read the same twice (another worker's fill may just have ended).
    const settled = found === previous;
    previous = found;
    if (!settled || (await othersFilling())) {
      await new Promise((r) => setTimeout(r, 250));
      continue;
    }
    try {
      await engine.removeVolume(name);
    } catch (err) {
      if (statusOf(err) === 404 || (await othersFilling())) continue;
      if (statusOf(err) === 409) throw new ImageUnusableError(`slotq's helper volume ${name} does not hold slotq's helper (digest ${found.slice(0, 12)}, expected ${content.digest.slice(0, 12)}: changed or half filled) and containers use it, so it cannot be refilled: remove them and the volume (docker volume rm ${name})`, { cause: err });
      throw err;
    }
  }
  throw new ImageUnusableError(`slotq's helper volume ${name} still does not hold slotq's helper after ${FILL_ROUNDS} tries (other workers kept filling it?${fillError ? ` the last fill failed: ${toError(fillError).message}` : ''}): remove it (docker volume rm ${name}) and start again`, fillError ? { cause: fillError } : {});
}

/** FILL_IMAGE, imported once per engine from its tar (a name no registry serves). */
async function importFillImage(engine: HelperFillEngine): Promise<void> {
  if (await engine.imageExists(FILL_IMAGE)) return;
  const [repo, tag] = FILL_IMAGE.split(':') as [string, string];
  const text = await engine.importImage(await fillImageTar(), repo, tag);
  if (/"error"/.test(text) || !(await engine.imageExists(FILL_IMAGE))) throw new Error(`importing ${FILL_IMAGE} failed: ${text.slice(0, 300)}`);
}

/** Fill containers left by a worker that died while filling (never started, so nothing removes them). */
async function removeStaleFillers(engine: HelperFillEngine): Promise<void> {
  const stale = await engine.createdFillers();
  for (const old of stale) if (Date.now() / 1000 - old.createdS > STALE_FILLER_S) await engine.removeContainer(old.id).catch(() => undefined);
}
