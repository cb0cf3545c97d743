/**
 * `npm run bench -- --scale`: the scale curve (scale.ts), merged into results.json under `scale` (other keys
 * kept) and drawn as docs/bench-scale.svg (calls/s and p50 against slots) in the same run.
 */
import { Redis } from 'ioredis';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Logger } from 'pino';
import { runScale, type ScaleResults } from './scale.js';

export const DEFAULT_SCALE_SVG = 'docs/bench-scale.svg';

/** A small two-axis line chart (no dependencies): calls/s on the left, p50 ms on the right, one-worker points. */
export function scaleSvg(r: ScaleResults): string {
  const pts = r.points.filter((p) => p.workers === 1);
  const [W, H, L, R, T, B] = [640, 360, 60, 60, 50, 50];
  const xs = pts.map((p) => Math.log2(p.slots));
  const [x0, x1] = [Math.min(...xs), Math.max(...xs, Math.min(...xs) + 1)];
  const maxCps = Math.max(...pts.map((p) => p.callsPerS), 1) * 1.15;
  const maxP50 = Math.max(...pts.map((p) => p.p50Ms), 1) * 1.15;
  const x = (slots: number): number => L + ((Math.log2(slots) - x0) / (x1 - x0)) * (W - L - R);
  const yL = (v: number): number => H - B - (v / maxCps) * (H - T - B);
  const yR = (v: number): number => H - B - (v / maxP50) * (H - T - B);
  const line = (f: (p: (typeof pts)[number]) => [number, number]): string => pts.map((p) => f(p).map((n) => n.toFixed(1)).join(',')).join(' ');
  const two = r.points.find((p) => p.workers === 2);
  const text = (tx: number, ty: number, s: string, extra = ''): string => `<text x="${tx.toFixed(1)}" y="${ty.toFixed(1)}" ${extra}>${s}</text>`;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    text(L, 20, `slotq scale curve: one worker, \`${r.command}\` (${r.channel} channel) · ${r.timestamp.slice(0, 16)}`, 'font-size="14"'),
    text(L, 36, two ? `two workers x ${two.slots / 2} slots, one Redis: ${two.callsPerS} calls/s, p50 ${two.p50Ms} ms` : '', 'fill="#555"'),
    `<line x1="${L}" y1="${H - B}" x2="${W - R}" y2="${H - B}" stroke="#333"/>`,
    `<line x1="${L}" y1="${T}" x2="${L}" y2="${H - B}" stroke="#1f77b4"/>`,
    `<line x1="${W - R}" y1="${T}" x2="${W - R}" y2="${H - B}" stroke="#d62728"/>`,
    ...pts.map((p) => text(x(p.slots) - 8, H - B + 16, String(p.slots))),
    text(W / 2 - 20, H - 12, 'slots'),
    ...[0, 0.5, 1].map((f) => text(6, yL(maxCps * f) + 4, String(Math.round(maxCps * f)), 'fill="#1f77b4"')),
    ...[0, 0.5, 1].map((f) => text(W - R + 6, yR(maxP50 * f) + 4, (maxP50 * f).toFixed(1), 'fill="#d62728"')),
    text(6, T - 8, 'calls/s', 'fill="#1f77b4"'),
    text(W - R - 10, T - 8, 'p50 ms', 'fill="#d62728"'),
    `<polyline fill="none" stroke="#1f77b4" stroke-width="2" points="${line((p) => [x(p.slots), yL(p.callsPerS)])}"/>`,
    `<polyline fill="none" stroke="#d62728" stroke-width="2" stroke-dasharray="5,3" points="${line((p) => [x(p.slots), yR(p.p50Ms)])}"/>`,
    ...pts.map((p) => `<circle cx="${x(p.slots).toFixed(1)}" cy="${yL(p.callsPerS).toFixed(1)}" r="3" fill="#1f77b4"/>`),
    ...pts.map((p) => `<circle cx="${x(p.slots).toFixed(1)}" cy="${yR(p.p50Ms).toFixed(1)}" r="3" fill="#d62728"/>`),
    '</svg>',
    '',
  ].join('\n');
}

export function renderScaleTable(r: ScaleResults): string {
  const rows = r.points.map((p) => `| ${p.workers} x ${p.slots / p.workers} | ${p.coldStartMs} | ${p.callsPerS} | ${p.p50Ms} | ${p.p99Ms} | ${p.hostMemPerSlotMb} | ${p.workerRssMb} | ${p.failures} |`);
  return ['| workers x slots | cold start ms | calls/s | p50 ms | p99 ms | host MB/slot | bench RSS MB | failures |', '|---|---|---|---|---|---|---|---|', ...rows, ...(r.capped ? [`(${r.capped})`] : [])].join('\n');
}

/** Runs the scale section; merges it into `out` (other keys kept) and draws `svg`. */
export async function runScaleSection(o: { redisUrl: string; out: string; svg?: string; logger: Logger; slots?: number[] }): Promise<ScaleResults> {
  const redis = new Redis(o.redisUrl, { connectionName: 'slotq-bench-scale' });
  let r: ScaleResults;
  try {
    r = await runScale(o.redisUrl, redis, o.logger, o.slots);
  } finally {
    redis.disconnect();
  }
  const existing = JSON.parse(await readFile(o.out, 'utf8').catch(() => '{}')) as Record<string, unknown>;
  await writeFile(o.out, `${JSON.stringify({ ...existing, scale: r }, null, 2)}\n`);
  const svg = o.svg ?? DEFAULT_SCALE_SVG;
  await mkdir(dirname(svg), { recursive: true });
  await writeFile(svg, scaleSvg(r));
  console.log(renderScaleTable(r));
  process.stderr.write(`[bench:scale] wrote scale into ${o.out} and ${svg}\n`);
  return r;
}
