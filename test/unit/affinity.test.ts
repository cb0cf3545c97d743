import { describe, expect, it } from 'vitest';
import { AFFINITY_SEPARATOR, affinityKey, affinityScope } from '../../src/shared/registry/affinity.js';
import { InvalidArgsError } from '../../src/shared/errors.js';

describe('affinity keys', () => {
  it('scope a trajectory ID to its producer, or to a namespace, and never let the two meet', () => {
    expect(affinityKey(affinityScope('p1'), 'traj-0')).toBe(`p:p1${AFFINITY_SEPARATOR}traj-0`);
    expect(affinityKey(affinityScope('p1', 'run-7'), 'traj-0')).toBe(`n:run-7${AFFINITY_SEPARATOR}traj-0`);
    expect(affinityKey(affinityScope('p2'), 'traj-0')).not.toBe(affinityKey(affinityScope('p1'), 'traj-0'));
    // A namespace named like a producer's scope is still a namespace.
    expect(affinityScope('x', 'p1')).not.toBe(affinityScope('p1'));
    // The scope is everything before the first separator: a trajectory ID holding one stays inside its scope.
    const key = affinityKey(affinityScope('p1'), `x${AFFINITY_SEPARATOR}y`);
    expect(key.slice(0, key.indexOf(AFFINITY_SEPARATOR))).toBe('p:p1');
  });

  it('refuse a namespace with control characters, an empty one, and a producer ID holding the separator', () => {
    for (const ns of ['', 'a\x1fb', 'tab\there', 'x'.repeat(129)]) expect(() => affinityScope('p1', ns)).toThrow(InvalidArgsError);
    expect(() => affinityScope(`p${AFFINITY_SEPARATOR}1`)).toThrow(InvalidArgsError);
    expect(() => affinityScope('')).toThrow(InvalidArgsError);
  });
});
