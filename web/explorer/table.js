// The results table: one line per finished row, with filters (disagreements only,
// failures only, by label, by predicted label, text search, an error group, a
// confusion-matrix cell), sorting, pages of PAGE_SIZE rows (so that 100,000 rows
// cost one pass over the columns per filter change and PAGE_SIZE rows of DOM), and
// the rows the filters show downloaded as CSV. A click on a row (its number, its
// thumbnail, or anywhere on it) calls `onOpen`: the explorer opens the row's view.

import { el, int, ms, usd, imageOf, imageOrPlaceholder, shown, userText, userPlain } from './dom.js';
import { rowsCsv, offerDownload } from './csv.js';

export const PAGE_SIZE = 50;

const ANY = -1;
const NO_PREDICTION = -2;

export const ANY_LABEL = ANY;
export const NO_PREDICTION_LABEL = NO_PREDICTION;

export function defaultFilters() {
  return { disagreements: false, failures: false, label: ANY, predicted: ANY, text: '', error: ANY, rows: null, rowsName: '' };
}

const COLUMNS = [
  { key: 'row', name: '#', sort: true },
  { key: 'thumb', name: 'Image' },
  { key: 'label', name: 'Label', sort: true },
  { key: 'prediction', name: 'Prediction', sort: true },
  { key: 'agreement', name: 'Agreement', sort: true },
  { key: 'attempts', name: 'Attempts', sort: true },
  { key: 'latency', name: 'Latency', sort: true },
  { key: 'tokens', name: 'Tokens', sort: true, title: 'Tokens the endpoint reported for the row (prompt and completion)' },
  { key: 'cost', name: 'Cost', sort: true, title: 'What the row\'s tokens cost at the run\'s price; – when no price is known' },
  { key: 'error', name: 'Error', sort: true },
];

/** An item column's value at `i`, or null when the data has no such column. */
function column(items, name, i) {
  const values = items[name];
  return values && values.length > i ? values[i] : null;
}

export class ResultsTable {
  /**
   * @param data     the explorer data
   * @param options  {thumbnail(image, i) -> url | null | {reason}}
   */
  constructor(data, options) {
    this.options = options;
    // Called after the user changes a filter or the sort (the explorer keeps them in the URL).
    this.onChange = () => {};
    // Called with an item index and the element clicked: the row's view opens.
    this.onOpen = () => {};
    this.filters = defaultFilters();
    this.sort = { key: 'row', dir: 1 };
    this.page = 0;
    this.root = el('section', { class: 'sx-table-section', 'aria-labelledby': 'sx-results-h' });
    this.setData(data);
  }

  setData(data) {
    this.data = data;
    this.items = data.items;
    this.n = this.items.row.length;
    this.haystack = null;
    this.labelRank = null;
    this.rows = null;
    this.build();
    this.refresh(false);
  }

  /** Changes some filters (and goes to the first page). */
  setFilter(partial) {
    Object.assign(this.filters, partial);
    this.page = 0;
    this.syncControls();
    this.refresh(true);
    this.onChange();
  }

  /** Sets the filters and the sort at once (a view read from the URL), without calling onChange. */
  setView(filters, sort) {
    this.filters = { ...defaultFilters(), ...filters };
    if (sort && COLUMNS.some((c) => c.sort && c.key === sort.key)) this.sort = { key: sort.key, dir: sort.dir < 0 ? -1 : 1 };
    this.page = 0;
    this.syncControls();
    this.refresh(true);
  }

  /** The rows the filters show, in the order shown, as a CSV download. */
  downloadCsv() {
    if (!this.rows) this.rows = this.matching();
    const run = String(this.data.runId || 'run').replace(/[^\w.-]+/g, '_');
    offerDownload(`shadow-mode-batch-rows-${run}.csv`, rowsCsv(this.data, this.rows), 'text/csv;charset=utf-8');
  }

  build() {
    const labels = this.data.labels;
    const option = (value, text) => el('option', { value, text });
    const labelOptions = () => [option(ANY, 'any'), ...labels.map((l, i) => option(i, userPlain(l)))];
    this.controls = {
      disagreements: el('input', { type: 'checkbox', name: 'disagreements', onchange: (e) => this.setFilter({ disagreements: e.target.checked }) }),
      failures: el('input', { type: 'checkbox', name: 'failures', onchange: (e) => this.setFilter({ failures: e.target.checked }) }),
      label: el('select', { name: 'label', onchange: (e) => this.setFilter({ label: Number(e.target.value) }) }, labelOptions()),
      predicted: el('select', { name: 'predicted', onchange: (e) => this.setFilter({ predicted: Number(e.target.value) }) },
        labelOptions(), option(NO_PREDICTION, '(none: failed)')),
      text: el('input', { type: 'search', name: 'search', placeholder: 'image, label, error, row…', 'aria-label': 'Search the results' }),
    };
    let typing;
    this.controls.text.addEventListener('input', (e) => {
      clearTimeout(typing);
      typing = setTimeout(() => this.setFilter({ text: e.target.value }), 120);
    });
    // Enter (or the clear button) filters at once.
    this.controls.text.addEventListener('search', (e) => {
      clearTimeout(typing);
      this.setFilter({ text: e.target.value });
    });
    this.chips = el('div', { class: 'sx-chips', 'aria-live': 'polite' });
    this.caption = el('caption');
    this.head = el('tr');
    for (const c of COLUMNS) {
      const th = el('th', { scope: 'col', dataset: { key: c.key }, title: c.title });
      if (c.sort) {
        th.append(el('button', { type: 'button', class: 'sx-sort', text: c.name, onclick: () => this.sortBy(c.key) }));
      } else {
        th.textContent = c.name;
      }
      this.head.append(th);
    }
    this.body = el('tbody');
    // A click anywhere on a row opens it, unless it was on a control of its own
    // (a cut label opening in place) or it ended a text selection.
    this.body.addEventListener('click', (ev) => {
      const tr = ev.target.closest('tr[data-i]');
      if (!tr) return;
      const opener = ev.target.closest('.sx-open, .sx-thumb-open');
      if (!opener && (ev.target.closest('button, a, input, select, .sx-cut') || String(window.getSelection()))) return;
      this.onOpen(Number(tr.dataset.i), opener || tr.querySelector('.sx-open'));
    });
    this.pager = el('div', { class: 'sx-pager' });
    this.csvButton = el('button', {
      type: 'button', class: 'sx-csv', text: 'Download these rows (CSV)',
      title: 'The rows the filters show, in the order shown, as a CSV file', onclick: () => this.downloadCsv(),
    });
    const c = this.controls;
    this.root.replaceChildren(
      el('h2', { id: 'sx-results-h', text: 'Results', tabindex: -1 }),
      el('div', { class: 'sx-filters', role: 'group', 'aria-label': 'Filters' },
        el('label', {}, c.disagreements, ' disagreements only'),
        el('label', {}, c.failures, ' failures only'),
        el('label', {}, 'label ', c.label),
        el('label', {}, 'predicted ', c.predicted),
        el('label', { class: 'sx-search' }, c.text),
        this.csvButton),
      this.chips,
      el('div', { class: 'sx-scroll' },
        el('table', { class: 'sx-results' }, this.caption, el('thead', {}, this.head), this.body)),
      this.pager);
    this.syncControls();
  }

  syncControls() {
    const f = this.filters;
    const c = this.controls;
    c.disagreements.checked = f.disagreements;
    c.failures.checked = f.failures;
    c.label.value = String(f.label);
    c.predicted.value = String(f.predicted);
    if (c.text.value !== f.text) c.text.value = f.text;
    const chips = [];
    const chip = (text, clear) => el('span', { class: 'sx-chip' }, text,
      el('button', { type: 'button', 'aria-label': `clear: ${text}`, text: '×', onclick: () => this.setFilter(clear) }));
    if (f.error !== ANY) chips.push(chip(`error: ${userPlain(this.items.errorTexts[f.error])}`, { error: ANY }));
    if (f.rows) chips.push(chip(f.rowsName || `${f.rows.size} rows`, { rows: null, rowsName: '' }));
    const active = f.disagreements || f.failures || f.label !== ANY || f.predicted !== ANY || f.text || f.error !== ANY || f.rows;
    if (active) {
      chips.push(el('button', { type: 'button', class: 'sx-clear', text: 'clear all filters', onclick: () => this.setFilter(defaultFilters()) }));
    }
    this.chips.replaceChildren(...chips);
  }

  sortBy(key) {
    this.sort = this.sort.key === key ? { key, dir: -this.sort.dir } : { key, dir: 1 };
    this.page = 0;
    this.refresh(true);
    this.onChange();
  }

  search(i) {
    if (!this.haystack) {
      const it = this.items;
      const labels = this.data.labels;
      this.haystack = new Array(this.n);
      for (let j = 0; j < this.n; j++) {
        const p = it.prediction[j];
        const e = it.error[j];
        const answer = it.answer && it.answer.length ? it.answer[j] || '' : '';
        this.haystack[j] = `${it.image[j]}\u0000${labels[it.label[j]]}\u0000${p === null ? '' : labels[p]}\u0000${e === null ? '' : it.errorTexts[e]}\u0000${it.id.length ? it.id[j] || '' : ''}\u0000${answer}`.toLowerCase();
      }
    }
    return this.haystack[i];
  }

  /** Indices of the rows that pass the filters, sorted. */
  matching() {
    const f = this.filters;
    const it = this.items;
    const q = f.text.trim().toLowerCase();
    const qNum = /^#?\d+$/.test(q) ? Number(q.replace('#', '')) : null;
    const out = new Int32Array(this.n);
    let k = 0;
    for (let i = 0; i < this.n; i++) {
      const ok = it.ok[i];
      const p = it.prediction[i];
      if (f.failures && ok) continue;
      if (f.disagreements && (!ok || p === it.label[i])) continue;
      if (f.label !== ANY && it.label[i] !== f.label) continue;
      if (f.predicted === NO_PREDICTION ? p !== null : f.predicted !== ANY && p !== f.predicted) continue;
      if (f.error !== ANY && it.error[i] !== f.error) continue;
      if (f.rows && !f.rows.has(it.row[i])) continue;
      if (q && !(qNum !== null && (it.row[i] + 1 === qNum || it.line[i] === qNum)) && !this.search(i).includes(q)) continue;
      out[k++] = i;
    }
    const rows = out.subarray(0, k);
    const cmp = this.comparator();
    if (cmp) {
      const dir = this.sort.dir;
      const missing = this.missing();
      // Rows without the value last in either direction; ties keep row order.
      rows.sort((a, b) => {
        const ma = missing(a);
        if (ma !== missing(b)) return ma ? 1 : -1;
        const c = cmp(a, b);
        return c ? c * dir : a - b;
      });
    } else if (this.sort.dir < 0) {
      rows.reverse();
    }
    return rows;
  }

  /** Whether row `i` lacks the sorted value. */
  missing() {
    const it = this.items;
    switch (this.sort.key) {
      case 'prediction': return (i) => it.prediction[i] === null;
      case 'latency': return (i) => it.latencyMs[i] === null;
      case 'tokens': return (i) => column(it, 'tokens', i) === null;
      case 'cost': return (i) => column(it, 'costUsd', i) === null;
      case 'error': return (i) => it.error[i] === null;
      default: return () => false;
    }
  }

  comparator() {
    const it = this.items;
    const labels = this.data.labels;
    if (!this.labelRank) {
      const order = labels.map((l, i) => i).sort((a, b) => (labels[a] < labels[b] ? -1 : labels[a] > labels[b] ? 1 : 0));
      this.labelRank = new Int32Array(labels.length);
      order.forEach((li, r) => { this.labelRank[li] = r; });
    }
    const rank = this.labelRank;
    switch (this.sort.key) {
      case 'row': return null; // the columns are in row order already
      case 'label': return (a, b) => rank[it.label[a]] - rank[it.label[b]];
      case 'prediction': return (a, b) => rank[it.prediction[a]] - rank[it.prediction[b]];
      case 'agreement': {
        const score = (i) => (!it.ok[i] ? 2 : it.prediction[i] === it.label[i] ? 0 : 1);
        return (a, b) => score(a) - score(b);
      }
      case 'attempts': return (a, b) => it.attempts[a] - it.attempts[b];
      case 'latency': return (a, b) => it.latencyMs[a] - it.latencyMs[b];
      case 'tokens': return (a, b) => column(it, 'tokens', a) - column(it, 'tokens', b);
      case 'cost': return (a, b) => column(it, 'costUsd', a) - column(it, 'costUsd', b);
      case 'error': {
        const texts = it.errorTexts;
        return (a, b) => (texts[it.error[a]] < texts[it.error[b]] ? -1 : texts[it.error[a]] > texts[it.error[b]] ? 1 : 0);
      }
      default: return null;
    }
  }

  refresh(recompute) {
    if (recompute || !this.rows) this.rows = this.matching();
    const pages = Math.max(1, Math.ceil(this.rows.length / PAGE_SIZE));
    this.page = Math.min(this.page, pages - 1);
    this.render(pages);
  }

  render(pages) {
    const it = this.items;
    const labels = this.data.labels;
    const start = this.page * PAGE_SIZE;
    const slice = this.rows.subarray(start, start + PAGE_SIZE);
    const frag = document.createDocumentFragment();
    for (const i of slice) {
      const p = it.prediction[i];
      const ok = it.ok[i];
      const agree = ok && p === it.label[i];
      const e = it.error[i];
      const n = it.row[i] + 1;
      const tokens = column(it, 'tokens', i);
      const tr = el('tr', { class: ok ? (agree ? 'sx-agree' : 'sx-disagree') : 'sx-failed', dataset: { row: it.row[i], i } },
        el('td', { class: 'sx-num', title: `CSV line ${it.line[i]}` },
          el('button', { type: 'button', class: 'sx-open', 'aria-haspopup': 'dialog', 'aria-label': `Row ${n}: open its evidence`, text: n })),
        el('td', {}, el('div', { class: 'sx-thumb' },
          el('button', { type: 'button', class: 'sx-thumb-open', 'aria-haspopup': 'dialog', 'aria-label': `Row ${n}: the image large` }, this.thumb(i)),
          el('span', { class: 'sx-name', title: shown(it.image[i]) }, userText(it.image[i])))),
        el('td', { class: 'sx-label' }, userText(labels[it.label[i]])),
        el('td', { class: 'sx-label' }, p === null ? '—' : userText(labels[p])),
        el('td', { class: 'sx-mark', text: !ok ? 'failed' : agree ? '✓ agrees' : '✗ differs' }),
        el('td', { class: 'sx-num', text: it.attempts[i] }),
        el('td', { class: 'sx-num', text: ms(it.latencyMs[i]) }),
        el('td', { class: 'sx-num', text: tokens === null ? '–' : int(tokens) }),
        el('td', { class: 'sx-num', text: usd(column(it, 'costUsd', i)) }),
        el('td', { class: 'sx-error' }, e === null ? '' : [it.errorKind[i] ? `[${it.errorKind[i]}] ` : '', userText(it.errorTexts[e], 240)]));
      frag.append(tr);
    }
    if (!slice.length) {
      frag.append(el('tr', {}, el('td', { colspan: COLUMNS.length, class: 'sx-muted', text: this.n ? 'No row matches these filters.' : 'No results to show.' })));
    }
    this.body.replaceChildren(frag);
    const matched = this.rows.length;
    // A capped report embeds a sample of the run's rows: the caption says of how many.
    const sample = this.data.sample;
    const of = sample ? `, a sample of the run's ${int(sample.rows)}` : '';
    this.caption.textContent = matched
      ? `Rows ${int(start + 1)}–${int(start + slice.length)} of ${int(matched)}${matched < this.n ? ` (filtered from ${int(this.n)}${of})` : of}`
      : `0 of ${int(this.n)} rows${of}`;
    for (const th of this.head.children) {
      const key = th.dataset.key;
      if (key === this.sort.key) th.setAttribute('aria-sort', this.sort.dir > 0 ? 'ascending' : 'descending');
      else th.removeAttribute('aria-sort');
    }
    const go = (page) => () => { this.page = page; this.refresh(false); };
    const btn = (text, page, disabled, label) => el('button', { type: 'button', text, disabled, 'aria-label': label, onclick: go(page) });
    this.pager.replaceChildren(
      btn('«', 0, this.page === 0, 'first page'),
      btn('‹', this.page - 1, this.page === 0, 'previous page'),
      el('span', { text: `page ${int(this.page + 1)} of ${int(pages)}` }),
      btn('›', this.page + 1, this.page >= pages - 1, 'next page'),
      btn('»', pages - 1, this.page >= pages - 1, 'last page'));
    this.root.dataset.matching = String(matched);
    this.csvButton.disabled = matched === 0;
    this.csvButton.textContent = matched === 1
      ? `Download ${this.n === 1 ? 'the' : 'this'} 1 row (CSV)`
      : `Download ${matched === this.n ? 'all' : 'these'} ${int(matched)} rows (CSV)`;
  }

  /** The item indices the filters show, in the order shown. */
  orderedRows() {
    if (!this.rows) this.rows = this.matching();
    return this.rows;
  }

  /** The open button of row number `row` when its page is drawn, else the table. */
  openerOf(row) {
    return this.body.querySelector(`tr[data-row="${row}"] .sx-open`) || this.root.querySelector('h2');
  }

  thumb(i) {
    const { url, reason } = imageOf(this.options.thumbnail, this.items.image[i], i);
    const placeholder = (why) => el('span', { class: 'sx-noimg', title: why, text: 'no image' });
    if (!url) return placeholder(reason);
    return imageOrPlaceholder(url, { alt: '', loading: 'lazy', decoding: 'async', width: 40, height: 40 }, placeholder);
  }
}
