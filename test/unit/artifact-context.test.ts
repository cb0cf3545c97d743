import { describe, expect, it } from 'vitest';
import { InternalError } from '../../src/shared/errors.js';
import { execScript, type ArtifactContext } from '../../src/worker/tools/artifact-context.js';
import { INTERNAL_STDOUT_BYTES } from '../../src/worker/tools/slot-access.js';
import type { ExecOutput } from '../../src/worker/executor/exec-port.js';

const ctxWith = (out: ExecOutput): ArtifactContext => ({
  item: { index: 0, executionId: 'e0', slotId: 's0', leaseId: 'l0', tool: 'artifact_read', args: {}, timeoutS: 10 },
  run: () => Promise.reject(new Error('not used')),
  io: { exec: () => Promise.resolve(out), stream: () => Promise.reject(new Error('not used')) },
  timeoutS: 10,
  startedAtMs: Date.now(),
  deadlineMs: Date.now() + 10_000,
});
const capture = (kept: Buffer, totalBytes: number) => ({ head: kept, tail: Buffer.alloc(0), totalBytes });

describe('execScript (slotq scripts over a one-shot exec)', () => {
  it('returns stdout whole when the exec kept all of it', async () => {
    const stdout = Buffer.from('f\0/workspace/x\0data');
    const out = await execScript(ctxWith({ exitCode: 0, stdout, stderr: Buffer.alloc(0), stdoutCapture: capture(stdout, stdout.length), stderrCapture: capture(Buffer.alloc(0), 0) }), 'script');
    expect([out.exitCode, out.stdout.toString()]).toEqual([0, 'f\0/workspace/x\0data']);
  });

  it('fails with a typed INTERNAL error when the script printed past its bound (the exec kept only part)', async () => {
    const kept = Buffer.alloc(16);
    const err = await execScript(ctxWith({ exitCode: 0, stdout: kept, stderr: Buffer.alloc(0), stdoutCapture: capture(kept, INTERNAL_STDOUT_BYTES + 1), stderrCapture: capture(Buffer.alloc(0), 0) }), 'script').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InternalError);
    expect((err as InternalError).message).toMatch(/printed 33554433 bytes/);
  });
});
