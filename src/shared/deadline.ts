/**
 * The one deadline helper of slotq: every wait has a deadline (contract §6). A value that arrives after
 * the deadline is handed to `onLate` (so what came too late, a container or a stream, can be closed);
 * a rejection after the deadline has nobody left to tell and is dropped.
 */
const LATE: unique symbol = Symbol('late');

async function race<T>(p: Promise<T>, ms: number, onLate?: (value: T) => void): Promise<T | typeof LATE> {
  let timer: NodeJS.Timeout | undefined;
  let late = false;
  const deadline = new Promise<typeof LATE>((resolve) => (timer = setTimeout(() => ((late = true), resolve(LATE)), ms)));
  const guarded = p.then((v) => {
    if (late) onLate?.(v);
    return v;
  });
  guarded.catch(() => undefined); // a late rejection has nobody to tell
  try {
    return await Promise.race([guarded, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

/** Settles like p, or rejects with onTimeout() after ms. */
export async function withDeadline<T>(p: Promise<T>, ms: number, onTimeout: () => Error, opts: { onLate?: (value: T) => void } = {}): Promise<T> {
  const r = await race(p, ms, opts.onLate);
  if (r === LATE) throw onTimeout();
  return r;
}

/** Settles like p, or resolves 'late' after ms (p keeps running; its value, if any, goes to onLate). */
export async function raceDeadline<T>(p: Promise<T>, ms: number, onLate?: (value: T) => void): Promise<T | 'late'> {
  const r = await race(p, ms, onLate);
  return r === LATE ? 'late' : r;
}

/** True when p settled (either way) within ms, false when the deadline came first. */
export async function settlesWithin(p: Promise<unknown>, ms: number): Promise<boolean> {
  return (await raceDeadline(p.then(() => true, () => true), ms)) !== 'late';
}
