// The confidence views of a run whose answers carried log-probabilities: the
// reliability diagram (15 confidence bins against agreement, with their counts),
// a threshold slider that shows how many rows the model would take over and lists
// the rows on each side, and the labels to re-check (confident learning: large
// thumbnail, given label, the model's label and confidence) with a CSV export
// ready for relabelling. Data: the summary's `confidence` (data.confidence) and
// the rows' `items.confidence`; nothing is drawn for a run without them.

import { el, svg, int, pct, num, imageOf, imageOrPlaceholder, userText } from './dom.js';
import { csvField, offerDownload } from './csv.js';

/** The columns of the re-check CSV. */
export const RECHECK_COLUMNS = ['row', 'line', 'image', 'label', 'modelLabel', 'confidence', 'labelProbability', 'likelyLabel', 'newLabel'];

/** The rows (indices into the items) with a confidence, and whether each agrees. */
function scoredRows(data) {
  const it = data.items;
  const out = [];
  if (!it.confidence || !it.confidence.length) return out;
  for (let i = 0; i < it.row.length; i += 1) {
    const c = it.confidence[i];
    if (it.ok[i] && typeof c === 'number') out.push({ i, c, agrees: it.prediction[i] === it.label[i] });
  }
  return out;
}

/**
 * The split of the scored rows at threshold `t`: `above` (confidence >= t: the
 * model would take them), `below` (left to people), each a list of item indices,
 * and the agreement among those above.
 */
export function thresholdSplit(data, t) {
  const above = [];
  const below = [];
  let agreed = 0;
  for (const r of scoredRows(data)) {
    if (r.c >= t) {
      above.push(r.i);
      if (r.agrees) agreed += 1;
    } else {
      below.push(r.i);
    }
  }
  return { above, below, agreement: above.length ? agreed / above.length : null };
}

/** The reliability diagram of `bins` (the summary's 15): bars of agreement per bin, the diagonal, counts. */
export function reliabilityDiagram(bins) {
  const W = 300;
  const H = 220;
  const pad = { l: 36, r: 8, t: 10, b: 30 };
  const x = (v) => pad.l + v * (W - pad.l - pad.r);
  const y = (v) => H - pad.b - v * (H - pad.t - pad.b);
  const chart = svg('svg', { viewBox: `0 0 ${W} ${H}`, class: 'sx-reliability', role: 'img', 'aria-label': 'Reliability diagram: agreement against confidence, by confidence bin' });
  chart.append(svg('line', { x1: x(0), y1: y(0), x2: x(1), y2: y(1), class: 'sx-rel-diagonal' }));
  chart.append(svg('line', { x1: x(0), y1: y(0), x2: x(1), y2: y(0), class: 'sx-axis' }));
  chart.append(svg('line', { x1: x(0), y1: y(0), x2: x(0), y2: y(1), class: 'sx-axis' }));
  for (const v of [0, 0.5, 1]) {
    chart.append(svg('text', { x: x(v), y: H - pad.b + 14, 'text-anchor': 'middle', class: 'sx-tick' }, String(v)));
    chart.append(svg('text', { x: pad.l - 4, y: y(v) + 4, 'text-anchor': 'end', class: 'sx-tick' }, pct(v, 0)));
  }
  chart.append(svg('text', { x: x(0.5), y: H - 2, 'text-anchor': 'middle', class: 'sx-tick' }, 'confidence'));
  for (const b of bins || []) {
    if (!b.rows || typeof b.agreement !== 'number') continue;
    const bar = svg('rect', {
      x: x(b.low) + 1, width: Math.max(1, x(b.high) - x(b.low) - 2), y: y(b.agreement), height: Math.max(0, y(0) - y(b.agreement)),
      class: 'sx-rel-bar', 'data-rows': b.rows,
    });
    bar.append(svg('title', {}, `confidence ${num(b.low, 2)}–${num(b.high, 2)}: ${int(b.rows)} rows, mean confidence ${pct(b.meanConfidence)}, agreement ${pct(b.agreement)}`));
    chart.append(bar);
    chart.append(svg('text', { x: (x(b.low) + x(b.high)) / 2, y: y(b.agreement) - 3, 'text-anchor': 'middle', class: 'sx-rel-count' }, int(b.rows)));
  }
  return chart;
}

/** The re-check CSV text of `issues` (the summary's labelErrors.issues). */
export function recheckCsv(data, issues) {
  const names = (data.confidence && data.confidence.labels) || data.labels;
  const at = new Map(data.items.row.map((row, i) => [row, i]));
  const lines = [RECHECK_COLUMNS.join(',')];
  for (const issue of issues) {
    const i = at.get(issue.row);
    lines.push([
      issue.row, lineOf(data, issue, i), i === undefined ? null : data.items.image[i],
      names[issue.given], names[issue.predicted], issue.confidence, issue.givenProbability, names[issue.likely], null,
    ].map(csvField).join(','));
  }
  return `${lines.join('\r\n')}\r\n`;
}

/**
 * The CSV line of a flagged row: the summary's (every issue has it since
 * issue 23), else the embedded row's; null when neither is known. In a sampled
 * run `row` is the position in the sample, so a person is told the line.
 */
function lineOf(data, issue, i) {
  if (typeof issue.line === 'number') return issue.line;
  return i === undefined ? null : data.items.line[i];
}

function recheckView(data, options) {
  const found = data.confidence.labelErrors;
  if (!found) return null;
  const names = data.confidence.labels || data.labels;
  const at = new Map(data.items.row.map((row, i) => [row, i]));
  const SHOWN = 60;
  const cards = found.issues.slice(0, SHOWN).map((issue) => {
    const i = at.get(issue.row);
    const line = lineOf(data, issue, i);
    const named = line === null ? `row ${issue.row}` : `line ${line}`;
    let picture;
    if (i === undefined) {
      picture = el('div', { class: 'sx-recheck-noimg', text: 'not embedded in this report' });
    } else {
      const got = imageOf(options.thumbnail, data.items.image[i], i);
      const placeholder = (why) => el('div', { class: 'sx-recheck-noimg', text: why });
      picture = got.url ? imageOrPlaceholder(got.url, { alt: named, loading: 'lazy', class: 'sx-recheck-img' }, placeholder) : placeholder(got.reason);
    }
    return el('li', { class: 'sx-recheck-card', dataset: { row: issue.row } },
      picture,
      el('div', { class: 'sx-recheck-text' },
        el('div', {}, 'labelled ', el('strong', {}, userText(names[issue.given], 40)), el('span', { class: 'sx-ci', text: ` p ${num(issue.givenProbability)}` })),
        el('div', {}, 'model: ', el('strong', {}, userText(names[issue.predicted], 40)), el('span', { class: 'sx-ci', text: ` at ${num(issue.confidence)}` })),
        el('div', { class: 'sx-recheck-line sx-muted', text: `CSV ${named}` })));
  });
  const exportButton = el('button', {
    type: 'button', class: 'sx-recheck-export', text: 'Download as CSV for relabelling',
    onclick: () => offerDownload(`labels-to-recheck-${data.runId || 'run'}.csv`, recheckCsv(data, found.issues), 'text/csv'),
  });
  return el('div', { class: 'sx-recheck' },
    el('h3', { text: `Labels to re-check: ${int(found.flagged)} of ${found.rows < data.confidence.scoredRows ? `the first ${int(found.rows)} of ${int(data.confidence.scoredRows)}` : int(found.rows)} scored rows` }),
    el('p', { class: 'sx-muted', text: 'Rows the model puts confidently in another label (confident learning, Northcutt et al. 2021), least likely given label first.' }),
    found.flagged ? exportButton : null,
    el('ol', { class: 'sx-recheck-list' }, cards),
    found.issues.length > SHOWN ? el('p', { class: 'sx-muted', text: `The first ${SHOWN} are shown; the CSV has all ${int(found.issues.length)} the summary lists.` }) : null);
}

function thresholdView(data, showRows) {
  const scored = scoredRows(data);
  if (!scored.length) return null;
  const target = data.confidence.atTarget;
  const start = target && typeof target.threshold === 'number' ? target.threshold : 0.9;
  const words = el('p', { class: 'sx-threshold-words', 'aria-live': 'polite' });
  const slider = el('input', { type: 'range', min: 0, max: 1, step: 0.01, value: start, name: 'threshold', 'aria-label': 'confidence threshold' });
  const aboveButton = el('button', { type: 'button', class: 'sx-threshold-above' });
  const belowButton = el('button', { type: 'button', class: 'sx-threshold-below' });
  let split = null;
  const update = () => {
    const t = Number(slider.value);
    split = thresholdSplit(data, t);
    const n = split.above.length + split.below.length;
    words.textContent = `At confidence ≥ ${t.toFixed(2)} the model takes ${int(split.above.length)} of ${int(n)} scored rows (${pct(n ? split.above.length / n : null, 0)})`
      + (split.agreement === null ? '' : `, agreeing with the labels on ${pct(split.agreement)} of them`)
      + `; ${int(split.below.length)} are left below.`;
    aboveButton.textContent = `List the ${int(split.above.length)} rows above`;
    belowButton.textContent = `List the ${int(split.below.length)} rows below`;
  };
  aboveButton.onclick = () => showRows(new Set(split.above.map((i) => data.items.row[i])), `${split.above.length} rows at confidence ≥ ${Number(slider.value).toFixed(2)}`);
  belowButton.onclick = () => showRows(new Set(split.below.map((i) => data.items.row[i])), `${split.below.length} rows below confidence ${Number(slider.value).toFixed(2)}`);
  slider.addEventListener('input', update);
  update();
  return el('div', { class: 'sx-threshold' },
    el('label', {}, 'Threshold ', slider), words, el('div', { class: 'sx-threshold-buttons' }, aboveButton, belowButton));
}

/**
 * The "Confidence" section of `data` (null without one); `showRows(rows, name)`
 * lists the given row numbers in the table.
 */
export function confidenceSection(data, options, showRows) {
  const c = data.confidence;
  if (!c) return null;
  const figures = [
    `on ${int(c.scoredRows)} of ${int(c.answeredRows)} answered rows`,
    typeof c.ece === 'number' ? `ECE ${num(c.ece)} (15 bins)` : null,
    typeof c.brier === 'number' ? `Brier ${num(c.brier)} (top label)` : null,
  ].filter(Boolean).join(' · ');
  const t = c.atTarget;
  const target = t && typeof t.threshold === 'number' && t.interval
    ? el('p', { class: 'sx-target', text: `At confidence ≥ ${num(t.threshold, 2)} the model agrees with the labels on ${pct(t.agreement)} of rows (${pct(t.interval.low)}–${pct(t.interval.high)}) and takes ${pct(t.coverage, 0)} of them (target ${pct(t.target)}).` })
    : null;
  return el('section', { class: 'sx-confidence-section', 'aria-labelledby': 'sx-confidence-h' },
    el('h2', { id: 'sx-confidence-h', text: 'Confidence' }),
    el('p', { class: 'sx-muted', text: figures }),
    target,
    el('div', { class: 'sx-two' }, c.scoredRows ? reliabilityDiagram(c.bins) : null, thresholdView(data, showRows)),
    recheckView(data, options));
}
