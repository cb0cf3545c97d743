/**
 * Draws docs/bench-latency.svg from tools/bench/results.json: the latency distributions (ECDF, log x axis) of
 * one `echo hi` call through slotq end to end and through a plain `docker exec`, made with vega-lite.
 *   npx tsx tools/bench/chart.ts [results.json] [out.svg]
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { View, parse } from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';

interface Results {
  timestamp: string;
  machine: { cpus: number; node: string };
  e2e: { p50Ms: number };
  baseline: { p50Ms: number };
  samples: { e2eMs: number[]; baselineMs: number[] };
}

const TARGET_P50_MS = 3;

function chartSpec(r: Results): TopLevelSpec {
  const slotq = `slotq end to end (p50 ${r.e2e.p50Ms.toFixed(1)} ms)`;
  const docker = `docker exec via dockerode (p50 ${r.baseline.p50Ms.toFixed(1)} ms)`;
  const values = [...r.samples.e2eMs.map((ms) => ({ path: slotq, ms })), ...r.samples.baselineMs.map((ms) => ({ path: docker, ms }))];
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: {
      text: 'Latency of one `echo hi` call, one at a time',
      subtitle: `${r.samples.e2eMs.length} + ${r.samples.baselineMs.length} calls · ${r.machine.cpus} CPUs · Node ${r.machine.node} · ${r.timestamp}`,
    },
    width: 640,
    height: 320,
    background: 'white',
    layer: [
      {
        data: { values },
        transform: [{ window: [{ op: 'cume_dist', as: 'fraction' }], sort: [{ field: 'ms' }], groupby: ['path'] }],
        mark: { type: 'line', interpolate: 'step-after', strokeWidth: 2 },
        encoding: {
          x: { field: 'ms', type: 'quantitative', scale: { type: 'log' }, title: 'latency per call (ms, log scale)' },
          y: { field: 'fraction', type: 'quantitative', axis: { format: '%' }, title: 'calls at or under this latency' },
          color: { field: 'path', type: 'nominal', title: null, legend: { orient: 'bottom', direction: 'vertical', labelLimit: 400 } },
        },
      },
      {
        data: { values: [{ ms: TARGET_P50_MS, label: `target p50 ≤ ${TARGET_P50_MS} ms` }] },
        layer: [
          { mark: { type: 'rule', strokeDash: [4, 4], color: 'gray' } },
          { mark: { type: 'text', align: 'left', dx: 4, y: 8, color: 'gray' }, encoding: { text: { field: 'label' } } },
        ],
        encoding: { x: { field: 'ms', type: 'quantitative' } },
      },
    ],
  };
}

async function main(): Promise<void> {
  const [input = 'tools/bench/results.json', output = 'docs/bench-latency.svg'] = process.argv.slice(2);
  const results = JSON.parse(await readFile(input, 'utf8')) as Results;
  const view = new View(parse(compile(chartSpec(results)).spec), { renderer: 'none' });
  const svg = await view.toSVG();
  view.finalize();
  await mkdir(dirname(output), { recursive: true });
  await writeFile(output, svg);
  console.log(`wrote ${output} (${results.samples.e2eMs.length} slotq and ${results.samples.baselineMs.length} docker exec samples)`);
}

await main();
