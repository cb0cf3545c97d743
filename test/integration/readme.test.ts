import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterEach, expect, it, vi } from 'vitest';
import { harness, redisUrl, type Harness } from '../support/harness.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
let h: Harness | undefined;
const sampleFile = `${root}test/.readme-sample.ts`;
afterEach(async () => {
  rmSync(sampleFile, { force: true });
  await h?.close();
});

/** The first ```ts block after a heading of the README. */
function sampleUnder(heading: string): string {
  const readme = readFileSync(`${root}README.md`, 'utf8');
  const from = readme.indexOf(heading);
  const m = /```ts\n([\s\S]*?)```/.exec(readme.slice(from));
  if (from < 0 || !m?.[1]) throw new Error(`no ts sample under ${heading}`);
  return m[1];
}

it('the README "Use it" sample runs as written against a real worker and prints 42', async () => {
  h = harness();
  await h.worker({ slots: 1 });
  const code = sampleUnder('## Use it')
    .replace("from 'slotq'", "from '../src/index.js'")
    .replace("redisUrl: 'redis://127.0.0.1:6379'", `redisUrl: ${JSON.stringify(redisUrl())}, prefix: ${JSON.stringify(h.prefix)}`);
  writeFileSync(sampleFile, code);
  const log = vi.spyOn(console, 'log').mockImplementation(() => undefined);
  try {
    await import(sampleFile);
    expect(log).toHaveBeenCalledWith('42\n');
  } finally {
    log.mockRestore();
  }
});
