import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { raceDeadline, settlesWithin, withDeadline } from '../../src/shared/deadline.js';

/** A promise settled by hand. */
function deferred<T>(): { promise: Promise<T>; resolve: (v: T) => void; reject: (e: Error) => void } {
  let resolve!: (v: T) => void;
  let reject!: (e: Error) => void;
  const promise = new Promise<T>((res, rej) => ((resolve = res), (reject = rej)));
  return { promise, resolve, reject };
}

describe('the deadline helper', () => {
  beforeEach(() => void vi.useFakeTimers());
  afterEach(() => void vi.useRealTimers());

  it('settles like the promise when it beats the deadline, and never calls onLate', async () => {
    const onLate = vi.fn();
    const d = deferred<number>();
    const p = withDeadline(d.promise, 1000, () => new Error('late'), { onLate });
    d.resolve(7);
    await expect(p).resolves.toBe(7);
    const failing = deferred<number>();
    const q = withDeadline(failing.promise, 1000, () => new Error('late'));
    failing.reject(new Error('boom'));
    await expect(q).rejects.toThrow('boom');
    expect(onLate).not.toHaveBeenCalled();
  });

  it('rejects with onTimeout() at the deadline and hands a value that comes later to onLate', async () => {
    const onLate = vi.fn();
    const d = deferred<string>();
    const p = withDeadline(d.promise, 1000, () => new Error('too slow'), { onLate });
    const outcome = expect(p).rejects.toThrow('too slow');
    await vi.advanceTimersByTimeAsync(1000);
    await outcome;
    d.resolve('container-id');
    await vi.runAllTimersAsync();
    expect(onLate).toHaveBeenCalledWith('container-id');
  });

  it("raceDeadline resolves 'late' instead of rejecting; a late rejection is dropped", async () => {
    const d = deferred<number>();
    const p = raceDeadline(d.promise, 500);
    await vi.advanceTimersByTimeAsync(500);
    await expect(p).resolves.toBe('late');
    d.reject(new Error('nobody listens')); // must not become an unhandled rejection
    await vi.runAllTimersAsync();
  });

  it('settlesWithin says whether a promise settled, either way, before the deadline', async () => {
    await expect(settlesWithin(Promise.reject(new Error('x')), 1000)).resolves.toBe(true);
    const never = settlesWithin(new Promise(() => undefined), 1000);
    await vi.advanceTimersByTimeAsync(1000);
    await expect(never).resolves.toBe(false);
  });
});
