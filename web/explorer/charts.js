// Charts over batches, as inline SVG: agreement with its band, throughput,
// latency, retries and 429s. Each takes the explorer data's `batches` points and
// draws what they hold; a chart with nothing to draw says so. Past MAX_BINS
// points, consecutive batches are binned: a line through each bin's value and a
// band from its lowest to its highest batch, with a note saying so.

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

function lastBatch(p) {
  return p.batchNumber + (p.batches || 1) - 1;
}

function xScale(points) {
  const first = points[0].batchNumber;
  const last = lastBatch(points[points.length - 1]);
  return { x: scale([first, last === first ? first + 1 : last], [PAD.l + 4, W - PAD.r - 4]), first, last };
}

// At most this many bins across a chart (one every 3 to 4 units of its 320-wide
// box): past it, single batches are a smear of dots and a solid block of lines.
const MAX_BINS = 80;

/**
 * Consecutive points gathered into at most MAX_BINS bins, or null when they fit.
 * Each bin has its first and last batch, its centre for the x axis and its points.
 */
function binsOf(points) {
  if (points.length <= MAX_BINS) return null;
  const per = Math.ceil(points.length / MAX_BINS);
  const bins = [];
  for (let i = 0; i < points.length; i += per) {
    const ps = points.slice(i, i + per);
    const first = ps[0].batchNumber;
    const last = lastBatch(ps[ps.length - 1]);
    bins.push({ first, last, batchNumber: (first + last) / 2, points: ps });
  }
  return bins;
}

/** A bin's mean and its lowest and highest batch of `get`, or null when none has it. */
function spread(bin, get) {
  let sum = 0; let n = 0; let lo = Infinity; let hi = -Infinity;
  for (const p of bin.points) {
    const v = get(p);
    if (typeof v !== 'number' || !Number.isFinite(v)) continue;
    sum += v; n += 1; lo = Math.min(lo, v); hi = Math.max(hi, v);
  }
  return n ? { mean: sum / n, lo, hi } : null;
}

/** The band from each bin's lowest to its highest value, as one closed path. */
function bandPath(bins, x, y, stats) {
  const pts = bins.map((b, i) => [x(b.batchNumber), stats[i]]).filter(([, s]) => s);
  if (!pts.length) return null;
  const top = pts.map(([px, s]) => `${px.toFixed(1)},${y(s.hi).toFixed(1)}`);
  const bottom = pts.reverse().map(([px, s]) => `${px.toFixed(1)},${y(s.lo).toFixed(1)}`);
  return svg('path', { d: `M${top.join('L')}L${bottom.join('L')}Z`, class: 'sx-binband' });
}

/** An invisible column per bin (or batch) whose tooltip tells its figures. */
function hits(items, x, text) {
  const width = Math.max(2, (W - PAD.l - PAD.r) / Math.max(items.length, 1));
  return items.map((b) => svg('rect', {
    x: (x(b.batchNumber) - width / 2).toFixed(1), y: PAD.t, width: width.toFixed(1), height: H - PAD.t - PAD.b, class: 'sx-hit',
  }, svg('title', { text: text(b) })));
}

function batchesOf(b) {
  return b.first === b.last ? `batch ${b.first}` : `batches ${b.first}–${b.last}`;
}

function binNote(bins, total) {
  return bins
    ? `${total} batches in ${bins.length} bins of ${bins[0].points.length}: the line is each bin's value, the band its lowest to highest batch`
    : null;
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

const DRIFT_WORDS = 'flagged by the drift tests (p-chart 3-sigma limits or a sustained fall)';

function agreementChart(points, run) {
  const title = 'Agreement per batch';
  const withRate = points.filter((p) => typeof p.agreementRate === 'number');
  if (!withRate.length) return empty(title, 'No batch reports with agreement counts.');
  const { x, first, last } = xScale(points);
  const bins = binsOf(withRate);
  let lo = 1;
  for (const p of withRate) lo = Math.min(lo, bins ? p.agreementRate : (p.agreementInterval ? p.agreementInterval.low : p.agreementRate));
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
  const drifting = withRate.filter((p) => p.drift).length;
  if (bins) {
    // Each bin: its batches' agreements together (rate x successful rows), and
    // the band from its lowest to its highest batch.
    const rate = (p) => p.agreementRate;
    const stats = bins.map((b) => spread(b, rate));
    for (const [i, b] of bins.entries()) {
      let agreed = 0; let n = 0;
      for (const p of b.points) {
        if (typeof p.agreementRate === 'number' && p.successful > 0) { agreed += p.agreementRate * p.successful; n += p.successful; }
      }
      b.rate = n > 0 ? agreed / n : stats[i] && stats[i].mean;
      b.drift = b.points.filter((p) => p.drift).length;
    }
    body.push(bandPath(bins, x, y, stats));
    body.push(line(bins, x, y, (b) => b.rate, 'sx-line'));
    for (const b of bins) {
      if (!b.drift) continue;
      body.push(svg('circle', { cx: x(b.batchNumber).toFixed(1), cy: y(b.rate).toFixed(1), r: 3.5, class: 'sx-dot sx-drift' }));
    }
    body.push(...hits(bins, x, (b, i = bins.indexOf(b)) => `${batchesOf(b)}: ${pct(b.rate)} (lowest batch ${pct(stats[i] && stats[i].lo)}, highest ${pct(stats[i] && stats[i].hi)})${b.drift ? `; ${b.drift} ${DRIFT_WORDS}` : ''}`));
  } else {
    let whiskers = '';
    for (const p of withRate) {
      if (!p.agreementInterval) continue;
      const px = x(p.batchNumber).toFixed(1);
      whiskers += `M${px},${y(p.agreementInterval.low).toFixed(1)}V${y(p.agreementInterval.high).toFixed(1)}`;
    }
    if (whiskers) body.push(svg('path', { d: whiskers, class: 'sx-whisker' }));
    body.push(line(withRate, x, y, (p) => p.agreementRate, 'sx-line'));
    for (const p of withRate) {
      body.push(svg('circle', {
        cx: x(p.batchNumber).toFixed(1), cy: y(p.agreementRate).toFixed(1), r: p.drift ? 3.5 : 2.2,
        class: p.drift ? 'sx-dot sx-drift' : 'sx-dot',
      }, svg('title', { text: `batch ${p.batchNumber}: ${pct(p.agreementRate)} (${interval(p.agreementInterval)})${p.drift ? ` — ${DRIFT_WORDS}` : ''}` })));
    }
  }
  const note = binNote(bins, withRate.length);
  return el('figure', { class: 'sx-fig', dataset: { chart: 'agreement', bins: bins ? bins.length : undefined } },
    el('figcaption', { text: title }),
    frame(title, `${withRate.length} batches, ${drifting} ${DRIFT_WORDS}`, ticks(lo, 1, y), (v) => pct(v, 0), [first, last], body),
    el('p', { class: 'sx-legend' },
      el('span', { class: 'sx-key sx-key-band' }), 'run\'s 95% interval ',
      bins ? [el('span', { class: 'sx-key sx-key-binband' }), ' lowest to highest batch '] : null,
      el('span', { class: 'sx-key sx-key-drift' }), ` drift (${drifting})`),
    note ? el('p', { class: 'sx-legend sx-binnote', text: note }) : null);
}

function simpleChart(kind, title, points, series, fmt, unit) {
  const present = series.filter((s) => points.some((p) => typeof s.get(p) === 'number'));
  if (!present.length) return empty(title, 'Not in these batch reports.');
  const { x, first, last } = xScale(points);
  const bins = binsOf(points);
  const stats = bins ? present.map((s) => bins.map((b) => spread(b, s.get))) : null;
  let hi = 0;
  for (const p of points) for (const s of present) { const v = s.get(p); if (typeof v === 'number' && v > hi) hi = v; }
  hi = hi > 0 ? hi * 1.1 : 1;
  const y = scale([0, hi], [H - PAD.b, PAD.t]);
  const body = [];
  if (bins) {
    for (const [i, s] of present.entries()) {
      const band = bandPath(bins, x, y, stats[i]);
      if (band) band.setAttribute('class', `sx-binband ${s.cls}`);
      body.push(band);
      body.push(line(bins.map((b, j) => ({ batchNumber: b.batchNumber, v: stats[i][j] && stats[i][j].mean })), x, y, (p) => p.v, `sx-line ${s.cls}`));
    }
    body.push(...hits(bins, x, (b) => {
      const j = bins.indexOf(b);
      return `${batchesOf(b)}: ${present.map((s, i) => {
        const st = stats[i][j];
        return st ? `${s.name} ${fmt(st.mean)} (${fmt(st.lo)} to ${fmt(st.hi)})` : `${s.name} –`;
      }).join(', ')} ${unit}`;
    }));
  } else {
    body.push(...present.map((s) => line(points, x, y, s.get, `sx-line ${s.cls}`)));
    body.push(...hits(points, x, (p) => `batch ${p.batchNumber}: ${present.map((s) => `${s.name} ${fmt(s.get(p))}`).join(', ')} ${unit}`));
  }
  const note = binNote(bins, points.length);
  return el('figure', { class: 'sx-fig', dataset: { chart: kind, bins: bins ? bins.length : undefined } },
    el('figcaption', { text: title }),
    frame(title, present.map((s) => s.name).join(', '), ticks(0, hi, y), fmt, [first, last], body),
    el('p', { class: 'sx-legend' }, present.map((s) => [el('span', { class: `sx-key ${s.cls}` }), ` ${s.name} `])),
    note ? el('p', { class: 'sx-legend sx-binnote', text: note }) : null);
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
    simpleChart('throughput', 'Throughput (rows per second, over the last second or more)', timed.length ? timed : points,
      [{ name: 'rows/s', get: (p) => p.throughputPerSec, cls: 's1' }], (v) => num(v, v >= 100 ? 0 : 1), 'rows/s'),
    simpleChart('latency', 'Latency (ms)', points, [
      { name: 'p50', get: (p) => p.latencyP50Ms, cls: 's1' },
      { name: 'p95', get: (p) => p.latencyP95Ms, cls: 's2' },
    ], ms, ''),
    simpleChart('retries', 'Retries and 429s per batch', points, [
      { name: 'retries', get: (p) => p.retries, cls: 's1' },
      { name: '429s', get: (p) => p.rateLimitHits, cls: 's2' },
    ], (v) => num(v, Number.isInteger(v) ? 0 : 1), 'per batch'));
}
