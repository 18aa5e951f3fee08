// The explorer's compare mode: two sides over the same rows (A, the incumbent: an
// earlier run or the CSV's baseline column; B, the candidate), as shadow-core's
// `compare::Comparison` holds them (the JSON of `shadow-batch compare`, a run
// summary's `comparison`, or the page's wasm face). Both sides' headlines side by
// side, the verdict, the paired 2x2 table whose cells list their rows, each
// label's precision, recall and F1 differences with their paired bootstrap
// intervals as a chart, and the rows with both answers (comparerows.js). This
// module computes no statistic: the core did; it draws them.
//
//   const view = renderComparison(container, comparison, { thumbnail: (image, i) => url | null | {reason} });
//   view.update(newComparison);   // live: keeps the rows' filter
//
// A run's own explorer shows the same sections for its summary's comparison
// (`comparisonSections`), without the rows (a summary keeps none).

import { el, svg, int, pct, interval, num, ms, usd, userText, userPlain } from './dom.js';
import { PairedRows, CELLS } from './comparerows.js';

/** B − A as points, signed: 0.031 -> "+3.1 pts". */
export function pointsText(share, digits = 1) {
  if (typeof share !== 'number' || !Number.isFinite(share)) return '–';
  const p = Number((share * 100).toFixed(digits)) + 0;
  return `${p > 0 ? '+' : p < 0 ? '−' : '±'}${Math.abs(p).toFixed(digits)} pts`;
}

/** A difference of scores (0 to 1), signed: "+0.095". */
export function signed(x, digits = 3) {
  if (typeof x !== 'number' || !Number.isFinite(x)) return '–';
  const v = Number(x.toFixed(digits)) + 0;
  return `${v > 0 ? '+' : v < 0 ? '−' : '±'}${Math.abs(v).toFixed(digits)}`;
}

/** The side's name as a heading shows it: `run …` (model). */
function sideName(side) {
  return [userText(side.name || '?', 60), side.model ? [' ', el('span', { class: 'sx-muted' }, '(', userText(side.model, 40), ')')] : null];
}

/** McNemar's p as the console words it. */
export function pText(p) {
  if (typeof p !== 'number') return 'p –';
  if (p < 0.001) return 'p < 0.001';
  if (p < 0.01) return `p = ${p.toFixed(3)}`;
  if (p >= 0.995) return 'p = 1';
  return `p = ${p.toFixed(2)}`;
}

/** Whether the verdict found B better, A better, or no difference: a style class. */
function verdictClass(c) {
  if (!c.mcnemar || c.mcnemar.pValue >= 0.05 || typeof c.difference !== 'number') return 'sx-cmp-none';
  return c.difference > 0 ? 'sx-cmp-b' : 'sx-cmp-a';
}

const MATCHED_BY = { id: 'by id', lineAndImage: 'by CSV line and image', row: 'row by row (one CSV)' };

/** The comparison's head: the two sides, how the rows were matched, partial and notes. */
function compareHead(c, title) {
  const m = c.matching || {};
  const unpaired = [m.differing ? `${int(m.differing)} differ` : null, m.onlyInA ? `${int(m.onlyInA)} only in A` : null,
    m.onlyInB ? `${int(m.onlyInB)} only in B` : null].filter(Boolean);
  return el('header', { class: 'sx-head sx-cmp-head' },
    el('div', { class: 'sx-title' }, el('h2', { text: title })),
    el('dl', { class: 'sx-cmp-who' },
      el('div', {}, el('dt', { text: 'A' }), el('dd', {}, sideName(c.a), c.a.csvPath ? [' · CSV ', el('code', {}, userText(c.a.csvPath, 120))] : null)),
      el('div', {}, el('dt', { text: 'B' }), el('dd', {}, sideName(c.b), c.b.csvPath ? [' · CSV ', el('code', {}, userText(c.b.csvPath, 120))] : null))),
    el('p', { class: 'sx-meta sx-cmp-matching', text: `${int(m.matched)} rows paired ${MATCHED_BY[m.by] || ''}${unpaired.length ? `; not paired: ${unpaired.join(', ')}` : ''}` }),
    c.partial ? el('p', { class: 'sx-sample sx-cmp-partial', role: 'note' }, el('strong', { text: 'Partial: ' }), userText(c.partial, 400)) : null,
    (c.notes || []).length ? el('ul', { class: 'sx-notes sx-cmp-notes' }, c.notes.map((n) => el('li', {}, userText(n, 400)))) : null);
}

/** The verdict in a line, coloured by which side it found better. */
function verdictLine(c) {
  return el('p', { class: `sx-cmp-verdict ${verdictClass(c)}`, role: 'status' },
    el('strong', { text: 'Verdict: ' }), userText(c.verdict || '', 400));
}

/** Both sides' headline figures side by side, and B − A where it means something. */
function sidesTable(c, idp) {
  const a = c.a;
  const b = c.b;
  const kappa = (s) => (s.kappa ? num(s.kappa.value) : '–');
  const latency = (s) => (s.latencyP50Ms === null || s.latencyP50Ms === undefined ? '–' : `${ms(s.latencyP50Ms)} / ${ms(s.latencyP95Ms)}`);
  const agreement = (s) => [pct(s.agreementRate), s.agreementInterval ? el('span', { class: 'sx-ci', text: `95% ${interval(s.agreementInterval)} · n = ${int(s.answered)}` }) : null];
  const diff = (x, y, f) => (typeof x === 'number' && typeof y === 'number' ? f(y - x) : '');
  const rows = [
    ['Agreement', agreement(a), agreement(b), [pointsText(c.difference),
      c.differenceInterval ? el('span', { class: 'sx-ci', text: `95% ${pointsText(c.differenceInterval.low)} to ${pointsText(c.differenceInterval.high)}` }) : null], 'agreement'],
    ['Cohen\'s κ', kappa(a), kappa(b), diff(a.kappa && a.kappa.value, b.kappa && b.kappa.value, signed), 'kappa'],
    ['Macro F1', num(a.macroF1), num(b.macroF1), diff(a.macroF1, b.macroF1, signed), 'macroF1'],
    ['Failed', int(a.failed), int(b.failed), diff(a.failed, b.failed, (d) => (d > 0 ? `+${int(d)}` : d < 0 ? `−${int(-d)}` : '±0')), 'failed'],
    ['Cost per image', usd(a.costPerImageUsd), usd(b.costPerImageUsd), '', 'cost'],
    ['Latency p50 / p95', latency(a), latency(b), '', 'latency'],
  ];
  const timing = (s) => (s.timingFrom === 'rows' ? 'from its rows' : s.timingFrom === 'summary' ? 'from its summary' : null);
  const timingNote = timing(a) && timing(a) === timing(b)
    ? `both sides' cost and latency from their ${a.timingFrom === 'rows' ? 'rows' : 'summaries'}`
    : [['A', timing(a)], ['B', timing(b)]].filter(([, t]) => t).map(([n, t]) => `${n}'s cost and latency ${t}`).join('; ');
  return el('section', { class: 'sx-cmp-sides-section', 'aria-labelledby': `${idp}-sides-h` },
    el('h2', { id: `${idp}-sides-h`, text: 'Side by side' }),
    el('p', { class: 'sx-muted', text: `Each side against the human labels over the ${int(c.matching && c.matching.matched)} paired rows${timingNote ? ` (${timingNote})` : ''}.` }),
    el('div', { class: 'sx-scroll' },
      el('table', { class: 'sx-cmp-sides' },
        el('thead', {}, el('tr', {}, el('th', { scope: 'col', text: '' }), el('th', { scope: 'col', text: 'A' }), el('th', { scope: 'col', text: 'B' }), el('th', { scope: 'col', text: 'B − A' }))),
        el('tbody', {}, rows.map(([name, va, vb, d, key]) => el('tr', { dataset: { figure: key } },
          el('th', { scope: 'row', text: name }), el('td', {}, va), el('td', {}, vb), el('td', { class: 'sx-cmp-diff' }, d)))))),
    el('p', { class: 'sx-muted' },
      `McNemar exact ${pText(c.mcnemar && c.mcnemar.pValue)} on ${int(c.mcnemar && c.mcnemar.discordant)} rows only one side got right · `,
      `κ between A and B: ${c.kappaBetween ? num(c.kappaBetween.value) : '–'} (how often their answers agree beyond chance, right or wrong) · `,
      'difference interval: Newcombe\'s method 10 for paired proportions'));
}

/**
 * The paired table: both right / only A right / only B right / both wrong, and
 * the rows a side failed apart. Each cell is a button: `pick(key)` lists its rows
 * (disabled when the comparison lists no row, as a summary's).
 */
function pairedTable(c, pick, listed, idp) {
  const t = c.table || {};
  const count = (key) => (t[key] ? t[key].count : 0);
  const answeredBoth = ['bothRight', 'onlyARight', 'onlyBRight', 'bothWrong'].reduce((s, k) => s + count(k), 0);
  const cellButton = (key, cls) => {
    const info = CELLS.find((x) => x.key === key);
    const n = count(key);
    const canList = listed && n > 0;
    return el('button', {
      type: 'button', class: `sx-cmp-cell ${cls || ''}`, dataset: { cell: key }, disabled: !canList,
      title: canList ? `List the ${int(n)} rows: ${info.name}` : n ? 'This comparison lists no rows (shadow-batch compare does)' : null,
      'aria-label': `${int(n)} rows ${info.name}${canList ? ': list them' : ''}`,
      onclick: () => pick(key),
    }, el('span', { class: 'sx-cmp-count', text: int(n) }),
    el('span', { class: 'sx-cmp-share', text: answeredBoth && !key.endsWith('Failed') ? pct(n / answeredBoth) : info.name }));
  };
  return el('section', { class: 'sx-cmp-table-section', 'aria-labelledby': `${idp}-table-h` },
    el('h2', { id: `${idp}-table-h`, text: 'Paired outcomes' }),
    el('p', { class: 'sx-muted', text: listed ? 'Each row of both sides, by who got its label right. Click a cell to list its rows.' : 'Each row of both sides, by who got its label right.' }),
    el('table', { class: 'sx-cmp-2x2' },
      el('caption', { class: 'sx-visually-hidden', text: 'Rows by whether A and B answered the label' }),
      el('thead', {}, el('tr', {}, el('td', { class: 'sx-corner', text: 'A ↓ · B →' }), el('th', { scope: 'col', text: 'B right' }), el('th', { scope: 'col', text: 'B wrong' }))),
      el('tbody', {},
        el('tr', {}, el('th', { scope: 'row', text: 'A right' }), el('td', {}, cellButton('bothRight', 'sx-cmp-same')), el('td', {}, cellButton('onlyARight', 'sx-cmp-a'))),
        el('tr', {}, el('th', { scope: 'row', text: 'A wrong' }), el('td', {}, cellButton('onlyBRight', 'sx-cmp-b')), el('td', {}, cellButton('bothWrong', 'sx-cmp-wrong'))))),
    el('div', { class: 'sx-cmp-failed', role: 'group', 'aria-label': 'Rows a side failed (no answer), counted apart' },
      el('span', { class: 'sx-muted', text: 'Failures, apart: ' }),
      ['onlyAFailed', 'onlyBFailed', 'bothFailed'].map((k) => cellButton(k, 'sx-cmp-fail'))));
}

export const METRICS = [
  { key: 'f1', name: 'F1' },
  { key: 'precision', name: 'precision' },
  { key: 'recall', name: 'recall' },
];

/** Labels drawn at most in the chart (the largest differences); the table lists all. */
const CHART_LABELS = 40;

/**
 * Each label's `metric` difference B − A as a dot, its 95% paired bootstrap
 * interval as a whisker, against a line at 0; the labels whose interval leaves
 * 0 coloured by the side they favour. Largest differences first.
 */
export function deltaChart(perLabel, metric) {
  const rows = perLabel.filter((l) => l[metric] && typeof l[metric].delta === 'number')
    .sort((x, y) => Math.abs(y[metric].delta) - Math.abs(x[metric].delta));
  if (!rows.length) return el('p', { class: 'sx-muted', text: 'No label has a difference to draw.' });
  const shownRows = rows.slice(0, CHART_LABELS);
  let reach = 0.05;
  for (const l of shownRows) {
    const d = l[metric];
    reach = Math.max(reach, Math.abs(d.delta), d.interval ? Math.abs(d.interval.low) : 0, d.interval ? Math.abs(d.interval.high) : 0);
  }
  reach = reach > 0.2 ? Math.ceil(reach * 10) / 10 : Math.ceil(reach * 20) / 20;
  const W = 640; const left = 150; const right = 170; const rowH = 20; const top = 22;
  const H = top + shownRows.length * rowH + 22;
  const x = (v) => left + ((v + reach) / (2 * reach)) * (W - left - right);
  const chart = svg('svg', { viewBox: `0 0 ${W} ${H}`, class: 'sx-chart sx-cmp-chart', role: 'img',
    'aria-label': `${metric} difference B − A by label, with 95% paired bootstrap intervals` },
  svg('title', { text: `${metric}: B − A by label` }));
  for (const v of [-reach, -reach / 2, 0, reach / 2, reach]) {
    chart.append(svg('line', { x1: x(v), x2: x(v), y1: top - 4, y2: H - 18, class: v === 0 ? 'sx-cmp-zero' : 'sx-grid' }),
      svg('text', { x: x(v), y: H - 6, 'text-anchor': 'middle', class: 'sx-tick', text: signed(v, 2) }));
  }
  chart.append(svg('text', { x: left - 8, y: top - 8, 'text-anchor': 'end', class: 'sx-tick', text: 'label' }),
    svg('text', { x: x(0), y: top - 8, 'text-anchor': 'middle', class: 'sx-tick', text: '← A better · B better →' }),
    svg('text', { x: W - right + 8, y: top - 8, class: 'sx-tick', text: 'B − A (95% interval)' }));
  shownRows.forEach((l, i) => {
    const d = l[metric];
    const y = top + i * rowH + rowH / 2;
    const iv = d.interval;
    const side = iv && iv.low > 0 ? 'sx-cmp-b' : iv && iv.high < 0 ? 'sx-cmp-a' : 'sx-cmp-none';
    const words = `${userPlain(l.label)}: ${metric} ${num(d.a)} → ${num(d.b)}, ${signed(d.delta)}${iv ? ` (95% ${signed(iv.low)} to ${signed(iv.high)})` : ''}, ${int(l.support)} rows`;
    chart.append(svg('g', { class: `sx-cmp-delta ${side}`, dataset: { label: l.label } },
      svg('title', { text: words }),
      svg('text', { x: left - 8, y: y + 4, 'text-anchor': 'end', class: 'sx-cmp-label', text: userPlain(l.label, 22) }),
      iv ? svg('line', { x1: x(iv.low), x2: x(iv.high), y1: y, y2: y, class: 'sx-cmp-whisker' }) : null,
      svg('circle', { cx: x(d.delta), cy: y, r: 4, class: 'sx-cmp-dot' }),
      svg('text', { x: W - right + 8, y: y + 4, class: 'sx-cmp-value', text: `${signed(d.delta)}${iv ? ` (${signed(iv.low, 2)} to ${signed(iv.high, 2)})` : ''}` })));
  });
  return el('figure', { class: 'sx-fig sx-cmp-fig' }, el('div', { class: 'sx-scroll' }, chart),
    el('figcaption', { class: 'sx-legend', text: `${rows.length > CHART_LABELS ? `The ${CHART_LABELS} largest of ${int(rows.length)} differences. ` : ''}Dot: B − A; whisker: its 95% paired bootstrap interval. Green: B better (the interval above 0); red: A better; grey: not shown either way.` }));
}

/** The per-label section: a chooser of the score, its chart, and the figures as a table. */
function perLabelDeltas(c, metric, setMetric, idp) {
  const per = c.perLabel || [];
  const chooser = el('select', { name: 'metric', onchange: (e) => setMetric(e.target.value) },
    METRICS.map((m) => el('option', { value: m.key, text: m.name })));
  chooser.value = metric;
  const boot = c.bootstrap || {};
  return el('section', { class: 'sx-cmp-labels-section', 'aria-labelledby': `${idp}-labels-h` },
    el('h2', { id: `${idp}-labels-h`, text: 'By label: B − A' }),
    el('label', { class: 'sx-toggle' }, 'score ', chooser),
    per.length ? deltaChart(per, metric) : el('p', { class: 'sx-muted', text: 'No label to compare.' }),
    per.length ? el('details', { class: 'sx-cmp-details' },
      el('summary', { text: 'The figures, every label' }),
      el('div', { class: 'sx-scroll' }, el('table', { class: 'sx-cmp-perlabel' },
        el('thead', {}, el('tr', {}, ['label', 'support', 'A', 'B', 'B − A', '95% interval'].map((h) => el('th', { scope: 'col', text: h })))),
        el('tbody', {}, per.map((l) => {
          const d = l[metric] || {};
          return el('tr', { dataset: { label: l.label } }, el('th', { scope: 'row' }, userText(l.label)),
            el('td', { class: 'sx-num', text: int(l.support) }), el('td', { class: 'sx-num', text: num(d.a) }), el('td', { class: 'sx-num', text: num(d.b) }),
            el('td', { class: 'sx-num', text: signed(d.delta) }), el('td', { class: 'sx-num', text: d.interval ? `${signed(d.interval.low)} to ${signed(d.interval.high)}` : '–' }));
        })))),
      el('p', { class: 'sx-muted', text: `${int(boot.resamples)} resamples, seed ${boot.seed}: ${boot.method || ''}` })) : null);
}

/**
 * The comparison's sections without its rows: what a run's explorer shows for
 * its summary's `comparison` (`--baseline`, `--baseline-column`).
 */
export function comparisonSections(c, metric, setMetric) {
  return el('section', { class: 'sx-cmp sx-cmp-summary', 'aria-labelledby': 'sx-cmp-summary-h' },
    el('h2', { id: 'sx-cmp-summary-h', text: 'Compared with the baseline (A: the baseline, B: this run)' }),
    verdictLine(c), compareHead(c, 'A vs B'),
    el('div', { class: 'sx-cmp-row' }, sidesTable(c, 'sx-cmpsum'), pairedTable(c, () => {}, false, 'sx-cmpsum')),
    perLabelDeltas(c, metric, setMetric, 'sx-cmpsum'));
}

class ComparisonView {
  constructor(container, comparison, options) {
    this.container = container;
    this.options = options;
    this.metric = 'f1';
    container.classList.add('sx');
    this.rows = new PairedRows(options);
    this.render(comparison);
  }

  render(c) {
    if (!c || !c.a || !c.b || !c.table) {
      this.container.replaceChildren(el('p', { class: 'sx-abort', text: 'This is not a comparison of two runs (no sides, no paired table).' }));
      return;
    }
    this.c = c;
    this.rows.setData(c);
    if (this.rows.view.metric) this.metric = this.rows.view.metric;
    this.draw();
  }

  setMetric(m) {
    this.metric = m;
    this.rows.setMetric(m);
    this.draw();
    this.container.querySelector('select[name=metric]')?.focus();
  }

  pick(cell) {
    this.rows.setFilter({ show: cell, label: null, text: '' });
    this.rows.root.scrollIntoView({ block: 'start' });
    this.rows.root.querySelector('h2')?.focus();
  }

  draw() {
    const c = this.c;
    const listed = (c.rows || []).length > 0;
    this.container.replaceChildren(
      compareHead(c, 'Comparison: is B better than A?'),
      verdictLine(c),
      el('div', { class: 'sx-cmp-row' }, sidesTable(c, 'sx-cmp'), pairedTable(c, (k) => this.pick(k), listed, 'sx-cmp')),
      perLabelDeltas(c, this.metric, (m) => this.setMetric(m), 'sx-cmp'),
      this.rows.root);
    this.container.dataset.ready = '1';
    this.container.dataset.mode = 'compare';
  }

  update(c) { this.render(c); }
}

/** Draws the compare view of `comparison` into `container`; returns it for updates. */
export function renderComparison(container, comparison, options = {}) {
  return new ComparisonView(container, comparison, options);
}
