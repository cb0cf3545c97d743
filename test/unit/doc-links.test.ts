import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../..', import.meta.url));
const pages = ['README.md', 'python/README.md', ...readdirSync(join(root, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];

/** The text of a page outside its fenced code blocks (a link in a sample is not a link). */
const prose = (md: string): string => md.replace(/^```[\s\S]*?^```/gm, '');

/** GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens. */
const slug = (heading: string): string =>
  heading.trim().toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, '').replace(/\s/g, '-');

/** The anchors of a page, with GitHub's -1, -2 suffixes for repeated headings. */
function anchors(md: string): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  for (const m of prose(md).matchAll(/^#{1,6}\s+(.+)$/gm)) {
    const base = slug(m[1] ?? '');
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    out.add(n === 0 ? base : `${base}-${n}`);
  }
  return out;
}

/** Every relative link target of a page: [text](target) and ![alt](target). */
const links = (md: string): string[] =>
  [...prose(md).matchAll(/\]\(([^)\s]+)\)/g)].map((m) => m[1] ?? '').filter((t) => !/^[a-z]+:/i.test(t));

describe('documentation links', () => {
  it.each(pages)('every relative link in %s resolves, anchors included', (page) => {
    const md = readFileSync(join(root, page), 'utf8');
    const broken: string[] = [];
    for (const target of links(md)) {
      const [path = '', anchor] = target.split('#');
      const file = path === '' ? join(root, page) : join(dirname(join(root, page)), path);
      if (!existsSync(file)) {
        broken.push(`${target} (no file ${relative(root, file)})`);
      } else if (anchor !== undefined && file.endsWith('.md') && !anchors(readFileSync(file, 'utf8')).has(anchor)) {
        broken.push(`${target} (no heading #${anchor} in ${relative(root, file)})`);
      }
    }
    expect(broken).toEqual([]);
  });

  it('finds the headings GitHub would link to', () => {
    expect(slug("A trajectory's own image")).toBe('a-trajectorys-own-image');
    expect(slug('The `slotq` CLI')).toBe('the-slotq-cli');
    expect(slug('Fencing: "retryable" means "never ran, and never will"')).toBe('fencing-retryable-means-never-ran-and-never-will');
  });
});
