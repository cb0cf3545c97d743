import { QUEUE_NAME_PREFIX } from '../../shared/keys.js';
import type { ClusterSnapshot, WorkerView } from './cluster-snapshot.js';

const esc = (v: string | number | undefined): string =>
  String(v ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] ?? c);

const seconds = (ms: number | undefined): string => (ms === undefined ? '' : (ms / 1000).toFixed(ms < 10_000 ? 1 : 0));

function workerRows(w: WorkerView): string {
  if (w.slots.length === 0) return `<tr><td>${esc(w.workerId)}</td><td colspan="5"><em>no slots registered</em></td></tr>`;
  return w.slots
    .map(
      (s) =>
        `<tr class="state-${esc(s.state)}"><td>${esc(w.workerId)}</td><td>${esc(s.slotId)}</td><td>${esc(s.state)}</td>` +
        `<td>${esc(s.trajectoryId)}</td><td>${seconds(s.heldForMs)}</td><td><code>${esc(s.containerId)}</code></td></tr>`,
    )
    .join('\n');
}

function workerSummary(w: WorkerView): string {
  const calls = w.stats.calls.reduce((n, c) => n + c.count, 0);
  const failed = w.stats.calls.filter((c) => c.outcome !== 'ok').reduce((n, c) => n + c.count, 0);
  return (
    `<tr><td>${esc(w.workerId)}</td><td>${esc(w.host)}</td><td>${esc(w.runtime)}</td><td>${esc(w.image)}${w.pulling ? ` <small>pulling ${esc(w.pulling)}</small>` : ''}</td><td>${esc(w.state)}</td><td>${seconds(w.ageMs)}</td>` +
    `<td>${w.slots.length}</td><td>${w.queue['waiting'] ?? 0}</td><td>${w.queue['active'] ?? 0}</td><td>${calls}</td><td>${failed}</td>` +
    `<td>${w.stats.brokenSlots}</td><td><a href="queues/queue/${encodeURIComponent(`${QUEUE_NAME_PREFIX}${w.workerId}`)}">queue</a></td></tr>`
  );
}

/** The /slots page: workers, then every slot with its holder trajectory, state and how long it has been held. */
export function renderSlotsPage(snap: ClusterSnapshot, refreshS = 5): string {
  const workers = snap.workers.map(workerSummary).join('\n');
  const slots = snap.workers.map(workerRows).join('\n');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="${refreshS}">
<title>slotq slots</title>
<style>
 body { font-family: system-ui, sans-serif; margin: 1.5rem; color: #222; }
 table { border-collapse: collapse; margin-bottom: 1.5rem; } th, td { border: 1px solid #ccc; padding: .25rem .6rem; text-align: left; }
 th { background: #f0f0f0; } tr.state-held td { background: #fff6d6; } tr.state-resetting td { background: #e6eefc; }
 nav a { margin-right: 1rem; }
</style></head>
<body>
<nav><a href="queues">Bull Board</a><a href="slots.json">slots.json</a><a href="metrics">metrics</a><a href="healthz">healthz</a></nav>
<h1>slotq slots <small>prefix ${esc(snap.prefix)}</small></h1>
<h2>Workers (${snap.workers.length})</h2>
<table id="workers"><thead><tr><th>worker</th><th>host</th><th>runtime</th><th>image</th><th>state</th><th>up (s)</th><th>slots</th><th>waiting</th><th>active</th><th>calls</th><th>failed</th><th>broken</th><th></th></tr></thead>
<tbody>
${workers || '<tr><td colspan="13"><em>no workers registered</em></td></tr>'}
</tbody></table>
<h2>Slots</h2>
<table id="slots"><thead><tr><th>worker</th><th>slot</th><th>state</th><th>holder trajectory</th><th>held for (s)</th><th>container</th></tr></thead>
<tbody>
${slots}
</tbody></table>
<p><small>taken ${esc(new Date(snap.takenAtMs).toISOString())}; refreshes every ${refreshS} s</small></p>
</body></html>
`;
}
