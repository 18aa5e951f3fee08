// The compare view's rows: each row with the human label and both sides'
// answers, filtered by what happened on it (a cell of the paired table: only A
// right, only B right, both wrong...; or the answers differ, or a side failed),
// by label and by text, in pages of the results table's PAGE_SIZE, downloadable
// as CSV; a row opens its view (the run explorer's row view, showing both
// answers). The rows are the comparison's `rows` (A's row order): every row a
// cell lists, then the first where the sides differ, then the first both got
// right, up to `shadow-batch compare --max-rows`; the caption says when a filter
// shows fewer rows than its cell counts.

import { el, int, shown, userText, userPlain, imageOf, imageOrPlaceholder } from './dom.js';
import { PAGE_SIZE } from './table.js';
import { csvField, offerDownload } from './csv.js';
import { readCompareView, compareViewFragment, showFragment } from './viewstate.js';
import { RowView } from './rowview.js';

/** The paired table's cells, in its order, with their names. */
export const CELLS = [
  { key: 'bothRight', name: 'both right' },
  { key: 'onlyARight', name: 'only A right' },
  { key: 'onlyBRight', name: 'only B right' },
  { key: 'bothWrong', name: 'both wrong' },
  { key: 'onlyAFailed', name: 'only A failed' },
  { key: 'onlyBFailed', name: 'only B failed' },
  { key: 'bothFailed', name: 'both failed' },
];

/** The rows filters: every row, a cell, or two groups of cells. */
export const SHOW = [
  { key: 'all', name: 'every row listed', has: () => true },
  { key: 'differ', name: 'they differ (answers not the same)', has: (r) => r.a !== r.b },
  { key: 'onlyARight', name: 'only A right', has: (r) => r.cell === 'onlyARight' },
  { key: 'onlyBRight', name: 'only B right', has: (r) => r.cell === 'onlyBRight' },
  { key: 'bothWrong', name: 'both wrong', has: (r) => r.cell === 'bothWrong' },
  { key: 'bothRight', name: 'both right', has: (r) => r.cell === 'bothRight' },
  { key: 'failed', name: 'a side failed', has: (r) => r.a === null || r.b === null },
  { key: 'onlyAFailed', name: 'only A failed', has: (r) => r.cell === 'onlyAFailed' },
  { key: 'onlyBFailed', name: 'only B failed', has: (r) => r.cell === 'onlyBFailed' },
  { key: 'bothFailed', name: 'both failed', has: (r) => r.cell === 'bothFailed' },
];

const CELL_TEXT = {
  bothRight: ['both right', 'sx-agree'], onlyARight: ['only A right', 'sx-cmp-row-a'], onlyBRight: ['only B right', 'sx-cmp-row-b'],
  bothWrong: ['both wrong', 'sx-disagree'], onlyAFailed: ['A failed', 'sx-failed'], onlyBFailed: ['B failed', 'sx-failed'], bothFailed: ['both failed', 'sx-failed'],
};

const PAIRED_CSV_COLUMNS = ['row', 'line', 'rowB', 'id', 'image', 'label', 'a', 'b', 'cell'];

/** One side's answer as shown: the answer, or that the side failed. */
function answer(text, label) {
  if (text === null || text === undefined) return el('span', { class: 'sx-cmp-noanswer', text: '— failed' });
  return el('span', { class: text === label ? 'sx-cmp-right' : 'sx-cmp-wrong' }, userText(text), text === label ? ' ✓' : ' ✗');
}

/** The row's view: the run explorer's, its facts the label and both answers. */
class PairedRowView extends RowView {
  indexOf(row) {
    if (!this.byRow) {
      this.byRow = new Map(this.data.rows.map((r, i) => [r.row, i]));
    }
    const i = this.byRow.get(row);
    return i === undefined ? -1 : i;
  }

  update(data) {
    this.byRow = null;
    super.update(data);
  }

  open(data, i, opener) {
    if (data !== this.data) this.byRow = null;
    super.open(data, i, opener);
  }

  show(i) {
    const r = this.data.rows[i];
    const c = this.data;
    this.row = r.row;
    this.heading.replaceChildren(`Row ${int(r.row + 1)}`,
      el('span', { class: 'sx-rv-sub' }, ` · CSV line ${int(r.line)}`, r.id ? [' · id ', el('bdi', { text: shown(r.id) })] : null,
        r.rowB !== undefined && r.rowB !== null ? ` · B's row ${int(r.rowB + 1)}` : null));
    this.showPlace(i);
    const [words, cls] = CELL_TEXT[r.cell] || [r.cell, ''];
    const who = (side) => `${side.name}${side.model ? ` (${side.model})` : ''}`;
    const facts = [
      ['Label', el('bdi', { text: shown(r.label) })],
      ['A\'s answer', answer(r.a, r.label)],
      ['B\'s answer', answer(r.b, r.label)],
      ['A', el('bdi', { text: shown(who(c.a)) })],
      ['B', el('bdi', { text: shown(who(c.b)) })],
    ];
    this.body.replaceChildren(
      el('figure', { class: 'sx-rv-image' }, this.image(i), el('figcaption', {}, el('bdi', { text: shown(r.image) }))),
      el('div', { class: 'sx-rv-facts' },
        el('p', { class: `sx-rv-verdict ${cls}`, text: words }),
        el('dl', {}, facts.map(([name, value]) => el('div', { class: 'sx-rv-fact', dataset: { fact: name } },
          el('dt', { text: name }), el('dd', {}, value))))));
  }

  image(i) {
    const image = this.data.rows[i].image;
    const { url, reason } = imageOf(this.options.thumbnail, image, i);
    const placeholder = (why) => el('div', { class: 'sx-rv-noimg' }, el('strong', { text: 'No image' }), el('span', { text: why }));
    if (!url) return placeholder(reason);
    return imageOrPlaceholder(url, { alt: `the row's image, ${shown(image)}` }, placeholder);
  }
}

export class PairedRows {
  constructor(options) {
    this.options = options;
    this.urlView = options.urlView !== false;
    this.view = this.urlView ? readCompareView(location.hash) : readCompareView('');
    this.page = 0;
    this.rowView = new PairedRowView(options);
    this.rowView.order = () => this.shownRows || [];
    this.rowView.fallbackFocus = (row) => this.body.querySelector(`tr[data-row="${row}"] .sx-open`) || this.root.querySelector('h2');
    this.root = el('section', { class: 'sx-table-section sx-cmp-rows', 'aria-labelledby': 'sx-cmp-rows-h' });
    this.build();
  }

  setData(c) {
    this.c = c;
    this.rows = c.rows || [];
    this.labels = [...new Set(this.rows.map((r) => r.label))].sort();
    this.fillLabels();
    this.refresh();
    this.rowView.update(c);
  }

  setMetric(metric) {
    this.view.metric = metric;
    this.saveView();
  }

  setFilter(partial) {
    Object.assign(this.view, partial);
    this.page = 0;
    this.syncControls();
    this.refresh();
    this.saveView();
  }

  saveView() {
    if (this.urlView) showFragment(compareViewFragment(this.view));
  }

  build() {
    this.controls = {
      show: el('select', { name: 'show', onchange: (e) => this.setFilter({ show: e.target.value }) },
        SHOW.map((s) => el('option', { value: s.key, text: s.name }))),
      label: el('select', { name: 'label', onchange: (e) => this.setFilter({ label: e.target.value === '' ? null : e.target.value }) }),
      text: el('input', { type: 'search', name: 'search', placeholder: 'image, label, answer, row…', 'aria-label': 'Search the rows' }),
    };
    let typing;
    this.controls.text.addEventListener('input', (e) => {
      clearTimeout(typing);
      typing = setTimeout(() => this.setFilter({ text: e.target.value }), 120);
    });
    this.controls.text.addEventListener('search', (e) => { clearTimeout(typing); this.setFilter({ text: e.target.value }); });
    this.caption = el('caption');
    this.body = el('tbody');
    this.body.addEventListener('click', (ev) => {
      const tr = ev.target.closest('tr[data-i]');
      if (!tr) return;
      const opener = ev.target.closest('.sx-open, .sx-thumb-open');
      if (!opener && (ev.target.closest('button, a, input, select, .sx-cut') || String(window.getSelection()))) return;
      this.rowView.open(this.c, Number(tr.dataset.i), opener || tr.querySelector('.sx-open'));
    });
    this.pager = el('div', { class: 'sx-pager' });
    this.csvButton = el('button', { type: 'button', class: 'sx-csv', text: 'Download these rows (CSV)', onclick: () => this.downloadCsv() });
    const c = this.controls;
    this.root.append(
      el('h2', { id: 'sx-cmp-rows-h', text: 'Rows, both answers', tabindex: -1 }),
      el('div', { class: 'sx-filters', role: 'group', 'aria-label': 'Filters' },
        el('label', {}, 'show ', c.show), el('label', {}, 'label ', c.label), el('label', { class: 'sx-search' }, c.text), this.csvButton),
      el('div', { class: 'sx-scroll' }, el('table', { class: 'sx-results sx-cmp-results' }, this.caption,
        el('thead', {}, el('tr', {}, ['#', 'Image', 'Label', 'A\'s answer', 'B\'s answer', 'Outcome'].map((h) => el('th', { scope: 'col', text: h })))),
        this.body)),
      this.pager);
  }

  fillLabels() {
    this.controls.label.replaceChildren(el('option', { value: '', text: 'any' }), this.labels.map((l) => el('option', { value: l, text: userPlain(l) })));
    this.syncControls();
  }

  syncControls() {
    const c = this.controls;
    c.show.value = SHOW.some((s) => s.key === this.view.show) ? this.view.show : 'all';
    c.label.value = this.view.label === null ? '' : this.view.label;
    if (c.text.value !== this.view.text) c.text.value = this.view.text;
  }

  /** Indices into the comparison's rows that pass the filters. */
  matching() {
    const show = (SHOW.find((s) => s.key === this.view.show) || SHOW[0]).has;
    const q = this.view.text.trim().toLowerCase();
    const qNum = /^#?\d+$/.test(q) ? Number(q.replace('#', '')) : null;
    const out = [];
    this.rows.forEach((r, i) => {
      if (!show(r)) return;
      if (this.view.label !== null && r.label !== this.view.label) return;
      if (q && !(qNum !== null && (r.row + 1 === qNum || r.line === qNum))
        && !`${r.image}\u0000${r.label}\u0000${r.a || ''}\u0000${r.b || ''}\u0000${r.id || ''}`.toLowerCase().includes(q)) return;
      out.push(i);
    });
    return out;
  }

  refresh() {
    this.shownRows = this.matching();
    const pages = Math.max(1, Math.ceil(this.shownRows.length / PAGE_SIZE));
    this.page = Math.min(this.page, pages - 1);
    this.render(pages);
  }

  thumb(i) {
    const { url, reason } = imageOf(this.options.thumbnail, this.rows[i].image, i);
    const placeholder = (why) => el('span', { class: 'sx-noimg', title: why, text: 'no image' });
    if (!url) return placeholder(reason);
    return imageOrPlaceholder(url, { alt: '', loading: 'lazy', decoding: 'async', width: 40, height: 40 }, placeholder);
  }

  render(pages) {
    const start = this.page * PAGE_SIZE;
    const slice = this.shownRows.slice(start, start + PAGE_SIZE);
    const frag = document.createDocumentFragment();
    for (const i of slice) {
      const r = this.rows[i];
      const [words, cls] = CELL_TEXT[r.cell] || [r.cell, ''];
      const n = r.row + 1;
      frag.append(el('tr', { class: cls, dataset: { row: r.row, i, cell: r.cell } },
        el('td', { class: 'sx-num', title: `CSV line ${r.line}` },
          el('button', { type: 'button', class: 'sx-open', 'aria-haspopup': 'dialog', 'aria-label': `Row ${n}: open it`, text: n })),
        el('td', {}, el('div', { class: 'sx-thumb' },
          el('button', { type: 'button', class: 'sx-thumb-open', 'aria-haspopup': 'dialog', 'aria-label': `Row ${n}: the image large` }, this.thumb(i)),
          el('span', { class: 'sx-name', title: shown(r.image) }, userText(r.image)))),
        el('td', { class: 'sx-label' }, userText(r.label)),
        el('td', { class: 'sx-label sx-cmp-answer', dataset: { side: 'a' } }, answer(r.a, r.label)),
        el('td', { class: 'sx-label sx-cmp-answer', dataset: { side: 'b' } }, answer(r.b, r.label)),
        el('td', { class: 'sx-mark', text: words })));
    }
    if (!slice.length) {
      frag.append(el('tr', {}, el('td', { colspan: 6, class: 'sx-muted', text: this.rows.length ? 'No row matches these filters.' : 'This comparison lists no rows.' })));
    }
    this.body.replaceChildren(frag);
    const matched = this.shownRows.length;
    const cell = this.c.table && this.c.table[this.view.show];
    const more = cell && cell.count > matched && this.view.label === null && !this.view.text
      ? ` (the cell has ${int(cell.count)}: the comparison lists the first ${int(matched)})` : '';
    this.caption.textContent = matched
      ? `Rows ${int(start + 1)}–${int(start + slice.length)} of ${int(matched)}${matched < this.rows.length ? ` (filtered from ${int(this.rows.length)} listed)` : ''}${more}`
      : `0 of ${int(this.rows.length)} rows listed`;
    const go = (page) => () => { this.page = page; this.render(pages); };
    const btn = (text, page, disabled, label) => el('button', { type: 'button', text, disabled, 'aria-label': label, onclick: go(page) });
    this.pager.replaceChildren(
      btn('«', 0, this.page === 0, 'first page'), btn('‹', this.page - 1, this.page === 0, 'previous page'),
      el('span', { text: `page ${int(this.page + 1)} of ${int(pages)}` }),
      btn('›', this.page + 1, this.page >= pages - 1, 'next page'), btn('»', pages - 1, this.page >= pages - 1, 'last page'));
    this.root.dataset.matching = String(matched);
    this.csvButton.disabled = matched === 0;
  }

  downloadCsv() {
    const lines = [PAIRED_CSV_COLUMNS.join(',')];
    for (const i of this.shownRows) {
      const r = this.rows[i];
      lines.push(PAIRED_CSV_COLUMNS.map((k) => csvField(r[k])).join(','));
    }
    const name = (side) => String(side.runId || side.name || 'side').replace(/[^\w.-]+/g, '_');
    offerDownload(`shadow-mode-batch-compare-rows-${name(this.c.a)}-vs-${name(this.c.b)}.csv`, `${lines.join('\r\n')}\r\n`, 'text/csv;charset=utf-8');
  }
}
