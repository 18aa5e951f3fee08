// The results explorer: one renderer for the page (during and after a run, and for
// an earlier run opened from its files) and for the CLI's self-contained HTML
// report. It draws the data that shadow-core's `explorer::build` makes (the page
// gets it through the wasm face, the report embeds it as JSON); it fetches
// nothing, and every string of the data is set as text. Its view (the table's
// filters and sort, the per-label table's sort, the matrix's row shares,
// and the column the slices break down by) is kept in the URL fragment
// (viewstate.js), so that a link opens the same view. A row of the results table
// opens its own view (rowview.js): the image large, the answer, its figures.
//
//   const view = renderExplorer(container, data, { thumbnail: (image, i) => url | null | {reason} });
//   view.update(newData);   // live: keeps the table's filters, sort and page

import { el, int, pct, interval, num, statusOf, shown, userText, userPlain, usd, REASON_NAMES } from './dom.js';
import { batchCharts } from './charts.js';
import { ResultsTable, defaultFilters, ANY_LABEL, NO_PREDICTION_LABEL } from './table.js';
import { readView, viewFragment, showFragment } from './viewstate.js';
import { RowView } from './rowview.js';
import { slicesSection } from './slices.js';
import { confidenceSection } from './calibration.js';
import { comparisonSections } from './compare.js';
import { samplingBanner, figureTag } from './sampling.js';

export const FORMAT = 1;

function figure(name, value, detail, cls, verdict, estimated) {
  return el('div', { class: `sx-stat ${cls || ''}` },
    el('div', { class: 'sx-stat-name', text: name }),
    el('div', { class: 'sx-stat-value', text: value }),
    detail ? el('div', { class: 'sx-stat-detail', text: detail }) : null,
    verdict ? el('div', { class: 'sx-stat-verdict', text: verdict }) : null,
    estimated ? el('div', { class: 'sx-stat-est', text: estimated }) : null);
}

/** The cost tile's value and detail, from the summary's `cost`; null without one. */
export function costFigure(cost) {
  if (!cost || typeof cost !== 'object') return null;
  const price = cost.price;
  const perImage = typeof cost.tokensPerImage === 'number' ? `${int(Math.round(cost.tokensPerImage))} tokens an image` : null;
  if (typeof cost.amountUsd === 'number' && price) {
    const source = price.source === 'listPrice'
      ? `${price.model} list price, checked ${price.checked}`
      : 'price given with the run';
    return {
      value: usd(cost.amountUsd),
      detail: [typeof cost.usdPerImage === 'number' ? `${usd(cost.usdPerImage)} an image` : null, source,
        price.batchApi ? 'batch API: half price' : null].filter(Boolean).join(' · '),
    };
  }
  if (!perImage) return null;
  return { value: perImage, detail: 'no price known for this model: give one to see dollars', tokens: true };
}

/**
 * What an agreement figure means, from Cohen's kappa (agreement beyond chance):
 * its colour class and words. Landis and Koch's bands; a kappa whose 95% interval
 * reaches 0 is chance, whatever the raw agreement.
 */
export function agreementMeaning(kappa) {
  if (!kappa || typeof kappa.value !== 'number') return { cls: 'sx-m-none', words: null };
  const k = kappa.value;
  const se = typeof kappa.standardError === 'number' ? kappa.standardError : 0;
  if (k + 1.96 * se < 0) return { cls: 'sx-m-bad', words: `κ ${num(k, 2)}: worse than chance` };
  if (k <= 0.2 || k - 1.96 * se <= 0) return { cls: 'sx-m-bad', words: `κ ${num(k, 2)}: no better than chance` };
  if (k < 0.6) return { cls: 'sx-m-warn', words: `κ ${num(k, 2)}: ${k < 0.4 ? 'fair' : 'moderate'} agreement beyond chance` };
  return { cls: 'sx-m-ok', words: `κ ${num(k, 2)}: ${k < 0.8 ? 'substantial' : 'almost perfect'} agreement beyond chance` };
}

/**
 * The run's gate (`--require`, for CI), from the summary's `gate`: the verdict
 * and each requirement as the console worded it; null for a run without one.
 */
export function gateBlock(gate) {
  if (!gate || typeof gate !== 'object' || !Array.isArray(gate.requirements)) return null;
  const [verdict, cls] = gate.verdict === 'passed' ? ['passed', 'sx-ok']
    : gate.verdict === 'failed' ? ['FAILED', 'sx-bad'] : ['not judged', 'sx-stopped'];
  const mark = (passed) => (passed === true ? '✓ ' : passed === false ? '✗ ' : '– ');
  return el('div', { class: `sx-gate ${cls}`, role: 'note' },
    el('strong', { class: 'sx-gate-verdict', text: `Gate: ${verdict}` }),
    gate.note ? el('span', { class: 'sx-gate-note', text: ` · ${gate.note}` }) : null,
    el('ul', {}, gate.requirements.map((r) => el('li', { class: r.passed === false ? 'sx-gate-missed' : null },
      mark(r.passed), userText(typeof r.text === 'string' ? r.text : String(r.requirement || ''), 400)))));
}

function headline(data) {
  const ev = data.evaluation || {};
  const t = data.totals || {};
  const status = statusOf(data);
  const config = data.config || {};
  const provider = config.provider || {};
  const mock = config.providerLabel === 'mock';
  const model = provider.model || (provider.url ? 'http endpoint' : null);
  const reasons = Object.entries(data.failureReasons || {}).filter(([, n]) => n > 0);
  const kappa = ev.kappa;
  const cost = costFigure(data.cost);
  const meaning = agreementMeaning(kappa);
  // A sampled run: every rate says what it is estimated from.
  const est = figureTag(data);
  const stats = [
    figure('Agreement', pct(ev.agreementRate),
      ev.agreementInterval ? `95% interval ${interval(ev.agreementInterval)} · n = ${int(ev.compared)}` : `n = ${int(ev.compared || 0)}`,
      `sx-main ${meaning.cls}`, meaning.words, est),
    figure('Cohen\'s κ', kappa ? num(kappa.value) : '–', kappa ? `± ${num(1.96 * kappa.standardError)} (95%)` : 'chance-corrected agreement',
      null, null, est),
    figure('Macro F1', num(ev.macroF1), `weighted ${num(ev.weightedF1)}`, null, null, est),
    figure('Processed', t.total !== null && t.total !== undefined ? `${int(t.processed)} / ${int(t.total)}` : int(t.processed),
      t.remaining ? `${int(t.remaining)} not done` : `${int(t.successful)} with a prediction`, null, null,
      data.csvSample ? `of a sample of the CSV's ${int(data.csvSample.csvRows)} rows` : null),
    figure('Failed', int(t.failed),
      reasons.length ? reasons.map(([k, n]) => `${REASON_NAMES[k] || k}: ${int(n)}`).join(' · ') : 'no failures',
      t.failed > 0 ? 'sx-warn' : ''),
  ];
  if (cost) stats.push(figure('Cost', cost.value, cost.detail, cost.tokens ? 'sx-cost sx-cost-tokens' : 'sx-cost'));
  // A capped report's rows are a sample: its first note says which, shown first.
  const notes = data.notes || [];
  const sampleNote = data.sample && notes.length ? notes[0] : null;
  const otherNotes = sampleNote ? notes.slice(1) : notes;
  return el('header', { class: 'sx-head' },
    el('div', { class: 'sx-title' },
      el('h2', {}, 'Run ', el('span', { class: 'sx-runid' }, userText(data.runId || '(unnamed)'))),
      el('span', { class: `sx-status sx-${status.cls}`, role: 'status', text: status.text })),
    samplingBanner(data),
    sampleNote ? el('p', { class: 'sx-sample', role: 'note', text: sampleNote }) : null,
    data.abortReason ? el('p', { class: 'sx-abort' }, 'Stopped: ', userText(data.abortReason, 400)) : null,
    gateBlock(data.gate),
    el('p', { class: 'sx-meta' },
      data.csvPath ? ['CSV ', el('code', {}, userText(data.csvPath, 240))] : null,
      model ? [' · model ', el('code', {}, userText(model))] : null,
      config.providerLabel ? ` · ${config.providerLabel}` : null,
      mock ? el('strong', { class: 'sx-sim', text: ' · predictions are SIMULATED (built-in mock)' }) : null),
    el('div', { class: 'sx-stats' }, stats),
    otherNotes.length ? el('ul', { class: 'sx-notes' }, otherNotes.map((n) => el('li', { text: n }))) : null);
}

function heat(count, rowTotal, diagonal) {
  if (!count) return {};
  const share = rowTotal ? count / rowTotal : 0;
  const a = 0.1 + 0.85 * share;
  return {
    style: { background: diagonal ? `rgba(22, 140, 70, ${a.toFixed(3)})` : `rgba(205, 45, 45, ${a.toFixed(3)})`, color: a > 0.55 ? '#fff' : '' },
  };
}

/**
 * The confusion matrix: counts, or (`view.normalise`) each row's shares, as
 * scikit-learn's `confusion_matrix(normalize='true')`: a cell over its row's total,
 * so that each row with a prediction sums to 1. `view.setNormalise(on)` toggles.
 */
function matrixSection(data, pick, view) {
  const ev = data.evaluation || {};
  const labels = ev.labels || [];
  const section = el('section', { class: 'sx-matrix-section', 'aria-labelledby': 'sx-matrix-h' },
    el('h2', { id: 'sx-matrix-h', text: 'Confusion matrix' }));
  if (!ev.confusionMatrix) {
    const top = ev.topConfusions || [];
    section.append(el('p', { class: 'sx-muted', text: labels.length ? `${labels.length} labels: too many for a matrix; the most frequent confusions:` : 'No evaluation yet.' }));
    if (top.length) {
      section.append(el('ol', { class: 'sx-top' }, top.map((c) => el('li', {},
        el('button', { type: 'button', class: 'sx-link', onclick: () => pick(c.label, c.predicted) },
          userText(c.label), ' → ', userText(c.predicted), `: ${int(c.count)}`)))));
    }
    return section;
  }
  const shares = view.normalise;
  // Failed rows by label, from the table's rows, as a last column (counts either way).
  const failedBy = new Map();
  const it = data.items;
  for (let i = 0; i < it.row.length; i++) {
    if (!it.ok[i]) failedBy.set(data.labels[it.label[i]], (failedBy.get(data.labels[it.label[i]]) || 0) + 1);
  }
  const withFailed = failedBy.size > 0;
  const head = el('tr', {}, el('th', { scope: 'col', class: 'sx-corner', title: 'rows: label; columns: predicted' },
    el('span', { class: 'sx-long', text: 'label ↓ · predicted →' }), el('span', { class: 'sx-short', 'aria-hidden': 'true', text: '↓ →' })),
    labels.map((l) => el('th', { scope: 'col', class: 'sx-col', title: shown(l) }, el('span', {}, userText(l)))),
    withFailed ? el('th', { scope: 'col', class: 'sx-col sx-failcol', text: shares ? 'failed (rows)' : 'failed' }) : null);
  const rows = ev.confusionMatrix.map((row, i) => {
    const total = row.reduce((a, b) => a + b, 0);
    return el('tr', {},
      el('th', { scope: 'row', class: 'sx-rowhead', title: shown(labels[i]) }, el('span', {}, userText(labels[i]))),
      row.map((count, j) => {
        const share = total ? count / total : 0;
        const of = `rows labelled ${userPlain(labels[i])} predicted ${userPlain(labels[j])}`;
        return el('td', heat(count, total, i === j),
          el('button', {
            type: 'button', class: 'sx-cell', dataset: shares ? { label: i, predicted: j, share: String(share) } : { label: i, predicted: j },
            text: shares ? (count ? share.toFixed(2) : '·') : (count ? int(count) : '·'),
            'aria-label': shares ? `${pct(share)} of the ${int(total)} ${of} (${int(count)})` : `${int(count)} ${of}`,
            onclick: () => pick(labels[i], labels[j]),
          }));
      }),
      withFailed ? el('td', { class: 'sx-failcol' },
        el('button', {
          type: 'button', class: 'sx-cell', text: failedBy.get(labels[i]) ? int(failedBy.get(labels[i])) : '·',
          'aria-label': `${int(failedBy.get(labels[i]) || 0)} rows labelled ${userPlain(labels[i])} failed`,
          onclick: () => pick(labels[i], null),
        })) : null);
  });
  const toggle = el('input', { type: 'checkbox', name: 'normalise', onchange: (e) => view.setNormalise(e.target.checked) });
  toggle.checked = shares;
  section.append(
    el('p', { class: 'sx-muted', text: shares
      ? 'Rows: the human label; columns: the model\'s prediction. Each cell is its share of the row (each row sums to 1). Click a cell to list its rows.'
      : 'Rows: the human label; columns: the model\'s prediction. Colour: share of the row. Click a cell to list its rows.' }),
    el('label', { class: 'sx-toggle' }, toggle, ' show each row as shares (normalised by row)'),
    el('div', { class: 'sx-scroll' },
      el('table', { class: `sx-matrix${shares ? ' sx-shares' : ''}` },
        el('caption', { class: 'sx-visually-hidden', text: shares ? 'Confusion matrix: label by prediction, shares of each label\'s row' : 'Confusion matrix: label by prediction' }),
        el('thead', {}, head), el('tbody', {}, rows))));
  return section;
}

/** The per-label table's columns: key, heading, the value of a label's scores, whether it narrows away at phone width. */
const LABEL_COLUMNS = [
  { key: 'label', name: 'label', value: (l) => l.label },
  { key: 'support', name: 'support', value: (l) => l.support },
  { key: 'predicted', name: 'predicted', value: (l) => l.predicted, optional: true },
  { key: 'correct', name: 'correct', value: (l) => l.correct, optional: true },
  { key: 'precision', name: 'precision', value: (l) => l.precision },
  { key: 'recall', name: 'recall', value: (l) => l.recall },
  { key: 'f1', name: 'F1', value: (l) => l.f1 },
];

/** The per-label rows in the order of `sort` ({key, dir}; null: the evaluation's
 * order). A missing score goes last either way; ties keep the evaluation's order. */
export function sortLabels(perLabel, sort) {
  const column = sort && LABEL_COLUMNS.find((c) => c.key === sort.key);
  const order = perLabel.map((l, i) => i);
  if (!column) return order.map((i) => perLabel[i]);
  const missing = (v) => v === null || v === undefined || (typeof v === 'number' && !Number.isFinite(v));
  order.sort((a, b) => {
    const va = column.value(perLabel[a]);
    const vb = column.value(perLabel[b]);
    if (missing(va) !== missing(vb)) return missing(va) ? 1 : -1;
    let c = 0;
    if (!missing(va)) c = typeof va === 'string' ? (va < vb ? -1 : va > vb ? 1 : 0) : va - vb;
    return c ? c * sort.dir : a - b;
  });
  return order.map((i) => perLabel[i]);
}

/**
 * Precision, recall and F1 per label, sortable by any column (a header's button;
 * aria-sort says the order), then the rows scikit-learn's `classification_report`
 * ends with: accuracy (in the F1 column, over every compared row), macro avg
 * (unweighted mean over the labels that occur in the labels or the predictions)
 * and weighted avg (by support), from the evaluation's own figures.
 */
function perLabelSection(data, pick, view) {
  const ev = data.evaluation || {};
  const per = ev.perLabel || [];
  const withInterval = (v, i) => [num(v), i ? el('span', { class: 'sx-ci', text: `${num(i.low, 2)}–${num(i.high, 2)}` }) : null];
  const sort = view.labelSort;
  const head = el('tr', {}, LABEL_COLUMNS.map((c) => {
    const th = el('th', { scope: 'col', class: c.optional ? 'sx-opt' : null, dataset: { key: c.key } },
      el('button', { type: 'button', class: 'sx-sort', text: c.name, onclick: () => view.sortLabels(c.key) }));
    if (sort && sort.key === c.key) th.setAttribute('aria-sort', sort.dir > 0 ? 'ascending' : 'descending');
    return th;
  }));
  const summaryRow = (name, precision, recall, f1, support) => el('tr', { class: 'sx-avg', dataset: { avg: name } },
    el('th', { scope: 'row', text: name }),
    el('td', { text: int(support) }),
    el('td', { class: 'sx-opt' }), el('td', { class: 'sx-opt' }),
    el('td', { text: precision === undefined ? '' : num(precision) }),
    el('td', { text: recall === undefined ? '' : num(recall) }),
    el('td', { text: num(f1) }));
  const compared = ev.compared;
  return el('section', { class: 'sx-perlabel-section', 'aria-labelledby': 'sx-perlabel-h' },
    el('h2', { id: 'sx-perlabel-h', text: 'Per label' }),
    per.length ? el('div', { class: 'sx-scroll' },
      el('table', { class: 'sx-perlabel' },
        el('caption', { class: 'sx-muted', text: 'Per label: precision and recall with their 95% intervals; click a heading to sort, a label to list its rows. '
          + 'Below, as scikit-learn\'s classification report: accuracy (in the F1 column), the macro and the weighted average.' }),
        el('thead', {}, head),
        el('tbody', {}, sortLabels(per, sort).map((l) => el('tr', { dataset: { label: l.label } },
          el('th', { scope: 'row' }, el('button', { type: 'button', class: 'sx-link', title: shown(l.label), onclick: () => pick(l.label, undefined) }, userText(l.label))),
          el('td', { text: int(l.support) }),
          el('td', { class: 'sx-opt', text: int(l.predicted) }),
          el('td', { class: 'sx-opt', text: int(l.correct) }),
          el('td', {}, withInterval(l.precision, l.precisionInterval)),
          el('td', {}, withInterval(l.recall, l.recallInterval)),
          el('td', { text: num(l.f1) })))),
        el('tfoot', {},
          summaryRow('accuracy', undefined, undefined, ev.agreementRate, compared),
          summaryRow('macro avg', ev.macroPrecision, ev.macroRecall, ev.macroF1, compared),
          summaryRow('weighted avg', ev.weightedPrecision, ev.weightedRecall, ev.weightedF1, compared)))) : el('p', { class: 'sx-muted', text: 'No evaluation yet.' }));
}

function errorsSection(data, showGroup) {
  const groups = data.errorGroups || [];
  if (!groups.length) return null;
  return el('section', { class: 'sx-errors-section', 'aria-labelledby': 'sx-errors-h' },
    el('h2', { id: 'sx-errors-h', text: 'Errors, grouped' }),
    el('div', { class: 'sx-scroll' },
      el('table', { class: 'sx-errors' },
        el('thead', {}, el('tr', {}, ['rows', 'kind', 'message', 'first rows', ''].map((h) => el('th', { scope: 'col', text: h })))),
        el('tbody', {}, groups.map((g) => el('tr', {},
          el('td', { class: 'sx-num', text: int(g.count) }),
          el('td', { text: g.kind || '' }),
          el('td', { class: 'sx-error' }, userText(g.message, 240),
            (g.details || []).length ? el('div', { class: 'sx-muted sx-detail' }, 'e.g. ', userText(g.details[0], 240)) : null),
          el('td', { text: (g.rows || []).slice(0, 8).map((r) => `#${r + 1}`).join(', ') + ((g.rows || []).length > 8 || g.count > (g.rows || []).length ? ', …' : '') }),
          el('td', {}, el('button', { type: 'button', class: 'sx-link', text: 'show', onclick: () => showGroup(g) }))))))));
}

class Explorer {
  constructor(container, data, options) {
    this.container = container;
    this.options = options;
    this.container.classList.add('sx');
    // The view (see viewstate.js): the per-label table's sort and the matrix's row
    // shares here, the results table's filters and sort in the table.
    this.labelSort = null;
    this.normalise = false;
    // The column the slices break down by (a name; null: the first sliced one).
    this.sliceColumn = null;
    // The score the comparison's per-label chart draws (a run with a baseline).
    this.compareMetric = 'f1';
    this.rowView = new RowView(options);
    this.rowView.order = () => (this.table ? this.table.orderedRows() : []);
    this.rowView.fallbackFocus = (row) => (this.table ? this.table.openerOf(row) : null);
    // A view from the URL whose labels the data does not hold yet (a live run):
    // applied once they come, unless the user changes the view first.
    this.pendingView = options.urlView === false ? null : readView(location.hash);
    if (options.urlView !== false) {
      window.addEventListener('hashchange', () => {
        this.pendingView = readView(location.hash);
        if (this.table) {
          this.applyPendingView();
          this.draw();
        }
      });
    }
    this.render(data);
  }

  /** Applies `pendingView` once every label and error it names is in the data. */
  applyPendingView() {
    const v = this.pendingView;
    if (!v || !this.table) return;
    // -1 (ANY_LABEL) for a name the data does not hold (yet).
    const index = (names, name) => (name === null ? ANY_LABEL : names.indexOf(name));
    const label = index(this.data.labels, v.label);
    const predicted = v.noPrediction ? NO_PREDICTION_LABEL : index(this.data.labels, v.predicted);
    const error = index(this.data.items.errorTexts, v.error);
    this.labelSort = v.labelSort;
    this.normalise = v.normalise;
    this.sliceColumn = v.slice;
    this.table.setView({
      disagreements: v.disagreements, failures: v.failures, text: v.text, label, predicted, error,
    }, v.sort);
    const missing = (name, i) => name !== null && i === ANY_LABEL;
    if (!missing(v.label, label) && !(!v.noPrediction && missing(v.predicted, predicted)) && !missing(v.error, error)) {
      this.pendingView = null;
    }
  }

  /** The view now, by names (viewstate.js). */
  view() {
    const f = this.table.filters;
    const labels = this.data.labels;
    return {
      disagreements: f.disagreements, failures: f.failures,
      label: f.label >= 0 ? labels[f.label] : null,
      predicted: f.predicted >= 0 ? labels[f.predicted] : null,
      noPrediction: f.predicted === NO_PREDICTION_LABEL,
      text: f.text, error: f.error >= 0 ? this.data.items.errorTexts[f.error] : null,
      sort: this.table.sort, labelSort: this.labelSort, normalise: this.normalise, slice: this.sliceColumn,
    };
  }

  /** The user changed the view: the URL says it from now on. */
  viewChanged() {
    this.pendingView = null;
    if (this.options.urlView !== false) showFragment(viewFragment(this.view()));
  }

  setNormalise(on) {
    this.normalise = on;
    this.viewChanged();
    this.draw();
    this.container.querySelector('.sx-matrix-section input[name=normalise]')?.focus();
  }

  /** Breaks the slices down by the column named `name`. */
  setSliceColumn(name) {
    this.sliceColumn = name;
    this.viewChanged();
    this.draw();
    this.container.querySelector('.sx-slices-section select[name=slice]')?.focus();
  }

  /** Sorts the per-label table by `key`: ascending, then descending on a second click. */
  sortLabels(key) {
    this.labelSort = this.labelSort && this.labelSort.key === key ? { key, dir: -this.labelSort.dir } : { key, dir: 1 };
    this.viewChanged();
    this.draw();
    this.container.querySelector(`.sx-perlabel th[data-key="${key}"] button`)?.focus();
  }

  render(data) {
    if (!data || data.format !== FORMAT) {
      this.container.replaceChildren(el('p', { class: 'sx-abort', text: `This explorer reads data of format ${FORMAT}; got ${data ? data.format : 'nothing'}.` }));
      return;
    }
    const oldLabels = this.data ? this.data.labels : null;
    const oldErrors = this.data ? this.data.items.errorTexts : null;
    this.data = data;
    if (!this.table) {
      this.table = new ResultsTable(data, this.options);
      this.table.onChange = () => this.viewChanged();
      this.table.onOpen = (i, opener) => this.rowView.open(this.data, i, opener);
    } else {
      // Keep the filters across an update; label indices may have moved.
      const f = this.table.filters;
      const remap = (i) => (i >= 0 && oldLabels ? Math.max(-1, data.labels.indexOf(oldLabels[i])) : i);
      f.label = remap(f.label);
      f.predicted = remap(f.predicted);
      f.error = f.error >= 0 && oldErrors ? data.items.errorTexts.indexOf(oldErrors[f.error]) : -1;
      this.table.setData(data);
      this.rowView.update(data);
    }
    this.applyPendingView();
    this.draw();
  }

  /** Draws every section for the data and the view now (the table keeps its own DOM). */
  draw() {
    const data = this.data;
    const pick = (label, predicted) => this.pick(label, predicted);
    const errors = errorsSection(data, (g) => this.showGroup(g));
    const parts = [
      headline(data),
      data.comparison ? comparisonSections(data.comparison, this.compareMetric, (m) => { this.compareMetric = m; this.draw(); }) : null,
      el('div', { class: 'sx-two' }, matrixSection(data, pick, this), perLabelSection(data, pick, this)),
      slicesSection(data, this.sliceColumn, (name) => this.setSliceColumn(name)),
      errors,
      this.table.root,
      // After the table: its cards of large images would push the rows down.
      confidenceSection(data, this.options, (rows, name) => this.showRows(rows, name)),
      el('section', { class: 'sx-batches-section', 'aria-labelledby': 'sx-batches-h' },
        el('h2', { id: 'sx-batches-h', text: 'Over batches' }), batchCharts(data)),
    ];
    this.container.replaceChildren(...parts.filter(Boolean));
    this.container.dataset.ready = '1';
    if (!this.marked) {
      this.marked = true;
      performance.mark('explorer-ready');
    }
  }

  /** Lists the rows labelled `label` and predicted `predicted` (null: failed; undefined: any). */
  pick(label, predicted) {
    const index = (name) => this.data.labels.indexOf(name);
    this.table.setFilter({
      ...defaultFilters(),
      label: index(label),
      predicted: predicted === undefined ? -1 : predicted === null ? -2 : index(predicted),
    });
    this.table.root.scrollIntoView({ block: 'start' });
  }

  /** Lists the rows numbered in `rows` (a Set), named `name` in the caption. */
  showRows(rows, name) {
    this.table.setFilter({ ...defaultFilters(), rows, rowsName: name });
    this.table.root.scrollIntoView({ block: 'start' });
  }

  showGroup(group) {
    const idx = this.data.items.errorTexts.indexOf(group.message);
    if (idx >= 0) {
      this.table.setFilter({ ...defaultFilters(), failures: true, error: idx });
    } else {
      this.table.setFilter({ ...defaultFilters(), rows: new Set(group.rows || []), rowsName: `${(group.rows || []).length} listed rows of “${userPlain(group.message, 240)}”` });
    }
    this.table.root.scrollIntoView({ block: 'start' });
  }

  update(data) { this.render(data); }
}

/** Draws the explorer for `data` into `container`; returns it for updates. */
export function renderExplorer(container, data, options = {}) {
  return new Explorer(container, data, options);
}
