// Charts over batches, as inline SVG: agreement with its band, throughput,
// latency, retries and 429s. Each takes the explorer data's `batches` points and
// draws what they hold; a chart with nothing to draw says so.

import { el, svg, pct, ms, num, interval } from './dom.js';

const W = 320;
const H = 150;
const PAD = { l: 44, r: 8, t: 10, b: 24 };

function scale(domain, range) {
  const [d0, d1] = domain;
  const [r0, r1] = range;
  const span = d1 - d0 || 1;
  return (v) => r0 + ((v - d0) / span) * (r1 - r0);
}

function frame(title, desc, yTicks, yFmt, xs, body) {
  const s = svg('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': `${title}: ${desc}`, class: 'sx-chart' },
    svg('title', { text: title }));
  const [x0, x1] = xs;
  for (const { v, y } of yTicks) {
    s.append(svg('line', { x1: PAD.l, x2: W - PAD.r, y1: y, y2: y, class: 'sx-grid' }));
    s.append(svg('text', { x: PAD.l - 4, y: y + 3, 'text-anchor': 'end', class: 'sx-tick', text: yFmt(v) }));
  }
  s.append(svg('text', { x: PAD.l, y: H - 6, class: 'sx-tick', text: `batch ${x0}` }));
  s.append(svg('text', { x: W - PAD.r, y: H - 6, 'text-anchor': 'end', class: 'sx-tick', text: `batch ${x1}` }));
  s.append(...body);
  return s;
}

function ticks(lo, hi, y) {
  return [lo, (lo + hi) / 2, hi].map((v) => ({ v, y: y(v) }));
}

function xScale(points) {
  const first = points[0].batchNumber;
  const last = points[points.length - 1].batchNumber;
  return { x: scale([first, last === first ? first + 1 : last], [PAD.l + 4, W - PAD.r - 4]), first, last };
}

function empty(title, why) {
  return el('figure', { class: 'sx-fig' }, el('figcaption', { text: title }), el('p', { class: 'sx-muted', text: why }));
}

function line(points, x, y, get, cls) {
  let d = '';
  for (const p of points) {
    const v = get(p);
    if (typeof v !== 'number' || !Number.isFinite(v)) continue;
    d += `${d ? 'L' : 'M'}${x(p.batchNumber).toFixed(1)},${y(v).toFixed(1)}`;
  }
  return d ? svg('path', { d, class: cls }) : null;
}

function agreementChart(points, run) {
  const title = 'Agreement per batch';
  const withRate = points.filter((p) => typeof p.agreementRate === 'number');
  if (!withRate.length) return empty(title, 'No batch reports with agreement counts.');
  const { x, first, last } = xScale(points);
  let lo = 1;
  for (const p of withRate) lo = Math.min(lo, p.agreementInterval ? p.agreementInterval.low : p.agreementRate);
  if (run && run.interval) lo = Math.min(lo, run.interval.low);
  lo = Math.max(0, Math.floor(lo * 10) / 10);
  const y = scale([lo, 1], [H - PAD.b, PAD.t]);
  const body = [];
  if (run && run.interval) {
    body.push(svg('rect', {
      x: PAD.l, width: W - PAD.l - PAD.r, y: y(run.interval.high), height: Math.max(1, y(run.interval.low) - y(run.interval.high)),
      class: 'sx-band',
    }, svg('title', { text: `run: ${pct(run.rate)} (95% interval ${interval(run.interval)})` })));
  }
  let whiskers = '';
  for (const p of withRate) {
    if (!p.agreementInterval) continue;
    const px = x(p.batchNumber).toFixed(1);
    whiskers += `M${px},${y(p.agreementInterval.low).toFixed(1)}V${y(p.agreementInterval.high).toFixed(1)}`;
  }
  if (whiskers) body.push(svg('path', { d: whiskers, class: 'sx-whisker' }));
  body.push(line(withRate, x, y, (p) => p.agreementRate, 'sx-line'));
  const few = withRate.length <= 200;
  for (const p of withRate) {
    if (!few && !p.drift) continue;
    body.push(svg('circle', {
      cx: x(p.batchNumber).toFixed(1), cy: y(p.agreementRate).toFixed(1), r: p.drift ? 3.5 : 2.2,
      class: p.drift ? 'sx-dot sx-drift' : 'sx-dot',
    }, svg('title', { text: `batch ${p.batchNumber}: ${pct(p.agreementRate)} (${interval(p.agreementInterval)})${p.drift ? ' — drift: outside the run\'s interval' : ''}` })));
  }
  const drifting = withRate.filter((p) => p.drift).length;
  return el('figure', { class: 'sx-fig', dataset: { chart: 'agreement' } },
    el('figcaption', { text: title }),
    frame(title, `${withRate.length} batches, ${drifting} outside the run's interval`, ticks(lo, 1, y), (v) => pct(v, 0), [first, last], body),
    el('p', { class: 'sx-legend' },
      el('span', { class: 'sx-key sx-key-band' }), 'run\'s 95% interval ',
      el('span', { class: 'sx-key sx-key-drift' }), ` drift (${drifting})`));
}

function simpleChart(kind, title, points, series, fmt) {
  const present = series.filter((s) => points.some((p) => typeof s.get(p) === 'number'));
  if (!present.length) return empty(title, 'Not in these batch reports.');
  const { x, first, last } = xScale(points);
  let hi = 0;
  for (const p of points) for (const s of present) { const v = s.get(p); if (typeof v === 'number' && v > hi) hi = v; }
  hi = hi > 0 ? hi * 1.1 : 1;
  const y = scale([0, hi], [H - PAD.b, PAD.t]);
  const body = present.map((s) => line(points, x, y, s.get, `sx-line ${s.cls}`));
  if (points.length <= 200) {
    for (const p of points) {
      const parts = present.map((s) => `${s.name} ${fmt(s.get(p))}`).join(', ');
      body.push(svg('rect', {
        x: (x(p.batchNumber) - 3).toFixed(1), y: PAD.t, width: 6, height: H - PAD.t - PAD.b, class: 'sx-hit',
      }, svg('title', { text: `batch ${p.batchNumber}: ${parts}` })));
    }
  }
  return el('figure', { class: 'sx-fig', dataset: { chart: kind } },
    el('figcaption', { text: title }),
    frame(title, present.map((s) => s.name).join(', '), ticks(0, hi, y), fmt, [first, last], body),
    el('p', { class: 'sx-legend' }, present.map((s) => [el('span', { class: `sx-key ${s.cls}` }), ` ${s.name} `])));
}

/** The charts over batches, or a note when there are no batch reports. */
export function batchCharts(data) {
  const points = data.batches || [];
  if (!points.length) {
    return el('p', { class: 'sx-muted', text: 'No batch reports yet.' });
  }
  const ev = data.evaluation || {};
  const run = { rate: ev.agreementRate, interval: ev.agreementInterval };
  const timed = points.filter((p) => !p.resumed);
  return el('div', { class: 'sx-charts' },
    agreementChart(points, run),
    simpleChart('throughput', 'Throughput (rows/s)', timed.length ? timed : points,
      [{ name: 'rows/s', get: (p) => p.throughputPerSec, cls: 's1' }], (v) => num(v, v >= 100 ? 0 : 1)),
    simpleChart('latency', 'Latency', points, [
      { name: 'p50', get: (p) => p.latencyP50Ms, cls: 's1' },
      { name: 'p95', get: (p) => p.latencyP95Ms, cls: 's2' },
    ], ms),
    simpleChart('retries', 'Retries and 429s', points, [
      { name: 'retries', get: (p) => p.retries, cls: 's1' },
      { name: '429s', get: (p) => p.rateLimitHits, cls: 's2' },
    ], (v) => num(v, 0)));
}
