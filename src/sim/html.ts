/**
 * The `--html` page of `allot simulate`: a Gantt chart of GPU occupancy per node over time (one row
 * per GPU; shares of a GPU drawn as partial height) and the queue length over time. One
 * self-contained file with inline SVG.
 */
import type { SimulationRun } from './engine';
import type { Scenario } from './scenario';

const ROW = 14;
const WIDTH = 1000;
const LEFT = 120;

/** Renders the page. */
export function renderHtml(title: string, scenario: Scenario, run: SimulationRun): string {
  const rows = scenario.nodes.flatMap((n) => n.gpus.map((g) => ({ node: n.id, gpu: g.index })));
  const rowOf = new Map(rows.map((r, i) => [`${r.node}/${r.gpu}`, i]));
  const end = Math.max(1, ...run.timeline.map((t) => t.time), ...run.intervals.map((i) => i.end));
  const x = (t: number): number => LEFT + (t / end) * WIDTH;
  const offsets = new Map<string, number>();
  const bars = run.intervals
    .map((iv) => {
      const row = rowOf.get(`${iv.node}/${iv.gpu}`);
      if (row === undefined) return '';
      const key = `${iv.node}/${iv.gpu}/${iv.start}`;
      const h = (ROW - 2) * (iv.milli / 1000);
      const off = offsets.get(key) ?? 0;
      offsets.set(key, off + h);
      const w = Math.max(0.5, x(iv.end) - x(iv.start));
      return `<rect x="${x(iv.start).toFixed(1)}" y="${(row * ROW + 1 + off).toFixed(1)}" width="${w.toFixed(1)}" height="${h.toFixed(1)}" fill="${color(iv.job)}"><title>${escape(iv.job)} on ${escape(iv.node)} GPU ${iv.gpu} (${iv.milli / 1000}) ${iv.start}s–${iv.end}s</title></rect>`;
    })
    .join('\n');
  const labels = rows
    .map((r, i) => `<text x="4" y="${i * ROW + ROW - 3}" font-size="10">${escape(r.node)} gpu${r.gpu}</text>`)
    .join('\n');
  const ganttHeight = rows.length * ROW + 20;
  const maxQueue = Math.max(1, ...run.timeline.map((t) => t.queued));
  const qh = 150;
  const points = run.timeline
    .map((t) => `${x(t.time).toFixed(1)},${(qh - (t.queued / maxQueue) * (qh - 10)).toFixed(1)}`)
    .join(' ');
  return `<!doctype html>
<html><head><meta charset="utf-8"><title>${escape(title)}</title>
<style>body{font-family:sans-serif;margin:20px}svg{border:1px solid #ddd;background:#fff}</style></head>
<body>
<h1>${escape(title)}</h1>
<h2>GPU occupancy per node (0–${end}s)</h2>
<svg width="${LEFT + WIDTH + 20}" height="${ganttHeight}">
${labels}
${bars}
<text x="${LEFT}" y="${ganttHeight - 4}" font-size="10">0s</text><text x="${LEFT + WIDTH - 30}" y="${ganttHeight - 4}" font-size="10">${end}s</text>
</svg>
<h2>Queue length (max ${maxQueue})</h2>
<svg width="${LEFT + WIDTH + 20}" height="${qh + 10}">
<polyline fill="none" stroke="#c33" stroke-width="1.5" points="${points}"/>
</svg>
</body></html>
`;
}

function color(job: string): string {
  let h = 0;
  for (let i = 0; i < job.length; i++) h = (h * 31 + job.charCodeAt(i)) % 360;
  return `hsl(${h},60%,55%)`;
}

function escape(s: string): string {
  return s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c] ?? c);
}
