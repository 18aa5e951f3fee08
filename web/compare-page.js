// "Compare two finished runs" in the page: two sets of run files (as "Open a
// finished run" takes one), or one run's files and a column of the labels CSV
// chosen under Data that holds the incumbent's decision per row. The core does
// the matching and the statistics (the wasm face's CompareRuns, or a ShadowRun
// restored from the run's results with compareWithColumn: nothing is sent);
// the explorer draws the result in its compare mode (web/explorer/compare.js).
// The comparison downloads as the CLI writes it: JSON, and the self-contained
// HTML view.

import {
  CompareRuns, ShadowRun, comparisonHtml, compareFileName, defaultConfig, runIdOfFileName,
} from './pkg/shadow_wasm.js';
import { renderComparison } from './explorer/compare.js';
import { offerDownload } from './explorer/csv.js';
import { classify } from './explorer-page.js';
import { now } from './runner.js';

function el(tag, props, ...children) {
  const e = document.createElement(tag);
  Object.assign(e, props || {});
  e.append(...children);
  return e;
}

/** A run's files sorted by kind (summary, progress, results); throws for a file that is not a run's. */
async function runFiles(files, side) {
  if (!files.length) throw new Error(`Choose ${side}'s files (its results .jsonl, and its summary or progress .json).`);
  const got = {};
  for (const file of files) {
    const { kind, text } = await classify(file);
    if (kind === 'unknown') throw new Error(`${side}: ${file.name} is not a file of a shadow-batch run (choose its results .jsonl, summary or progress .json).`);
    if (kind !== 'provider') got[kind] = { file, text, name: file.name };
  }
  if (!got.results) throw new Error(`${side}: no results file among ${files.map((f) => f.name).join(', ')}: the rows are compared from it (shadow-mode-batch-results-….jsonl).`);
  got.runId = [got.summary, got.progress, got.results].map((f) => f && runIdOfFileName(f.name)).find((id) => id !== undefined);
  return got;
}

/** Feeds a results file to `push` in chunks (never whole: a long run's is gigabytes). */
async function stream(results, push) {
  if (results.text !== undefined) {
    push(new TextEncoder().encode(results.text));
    return;
  }
  const reader = results.file.stream().getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return;
    push(value);
  }
}

export class ComparePanel {
  /**
   * @param parent     where the panel goes (the explorer's section)
   * @param thumbnail  (image) => url | {reason}: the page's images folder
   * @param csv        async () => {csvText, csvName} of the labels CSV under Data, or null
   */
  constructor(parent, thumbnail, csv) {
    this.thumbnail = thumbnail;
    this.csv = csv;
    this.view = null;
    this.comparison = null;
    const files = (id, label) => {
      const input = el('input', { type: 'file', multiple: true, accept: '.jsonl,.json,application/json', id });
      return [input, el('label', { textContent: label }, input)];
    };
    [this.inputA, this.labelA] = files('compare-a-files', 'Run A (the incumbent) ');
    [this.inputB, this.labelB] = files('compare-b-files', 'Run B (the candidate) ');
    this.column = el('input', { id: 'compare-column', placeholder: 'e.g. decision', size: 16 });
    this.allowPartial = el('input', { type: 'checkbox', id: 'compare-partial' });
    this.modeRuns = el('input', { type: 'radio', name: 'compare-mode', value: 'runs', checked: true });
    this.modeColumn = el('input', { type: 'radio', name: 'compare-mode', value: 'column' });
    for (const r of [this.modeRuns, this.modeColumn]) r.addEventListener('change', () => this.showMode());
    this.columnFields = el('p', { className: 'hint' }, el('label', { textContent: 'Baseline column of the labels CSV (under Data) ' }, this.column));
    this.button = el('button', { type: 'button', id: 'compare-go', textContent: 'Compare' });
    this.button.addEventListener('click', () => this.compare().catch((e) => this.error(String(e.message || e))));
    this.message = el('p', { className: 'error', hidden: true, role: 'alert', id: 'compare-error' });
    this.downloads = el('p', { className: 'downloads', hidden: true },
      el('button', { type: 'button', id: 'compare-dl-json', textContent: 'Comparison JSON', onclick: () => this.download('json') }), ' ',
      el('button', { type: 'button', id: 'compare-dl-html', textContent: 'Comparison HTML', onclick: () => this.download('html') }));
    this.container = el('div', { id: 'comparison' });
    parent.append(
      el('details', { id: 'compare-runs' },
        el('summary', { textContent: 'Compare two finished runs' }),
        el('p', { className: 'hint', textContent: 'Is B better than A on the same rows? Choose each run\'s results file and, '
          + 'if there is one, its summary or progress file; or one run and the column of its labels CSV that holds the '
          + 'incumbent\'s decision per row. Nothing is sent anywhere. For thumbnails, choose the images folder under Data.' }),
        el('p', {}, el('label', {}, this.modeRuns, ' two runs'), ' ', el('label', {}, this.modeColumn, ' a run and its CSV\'s baseline column')),
        this.pA = el('p', {}, this.labelA), el('p', {}, this.labelB), this.columnFields,
        el('p', {}, el('label', {}, this.allowPartial, ' compare the matching rows of runs over different CSVs')),
        this.button),
      this.message, this.downloads, this.container);
    this.showMode();
  }

  showMode() {
    const column = this.modeColumn.checked;
    this.pA.hidden = column;
    this.columnFields.hidden = !column;
    this.labelB.firstChild.textContent = column ? 'The run (B) ' : 'Run B (the candidate) ';
  }

  error(text) {
    this.message.textContent = text;
    this.message.hidden = !text;
  }

  async compare() {
    this.error('');
    this.button.disabled = true;
    try {
      const c = this.modeColumn.checked ? await this.withColumn() : await this.twoRuns();
      this.show(c);
    } finally {
      this.button.disabled = false;
    }
  }

  /** Two runs through the core's CompareRuns: A's results read twice (the rows' text). */
  async twoRuns() {
    const a = await runFiles([...this.inputA.files], 'A');
    const b = await runFiles([...this.inputB.files], 'B');
    const c = new CompareRuns(a.summary?.text, a.progress?.text, b.summary?.text, b.progress?.text);
    await stream(a.results, (chunk) => c.pushA(chunk));
    await stream(b.results, (chunk) => c.pushB(chunk));
    const mismatch = c.pair();
    if (mismatch && !this.allowPartial.checked) {
      throw new Error(`${mismatch}. Nothing compared: tick "compare the matching rows" to compare them anyway.`);
    }
    if (c.wantsRows()) await stream(a.results, (chunk) => c.pushRows(chunk));
    this.names = [a.runId || 'A', b.runId || 'B'];
    return c.finish(this.allowPartial.checked);
  }

  /** A run and the CSV's baseline column: the run restored from its results (nothing sent). */
  async withColumn() {
    const column = this.column.value.trim();
    if (!column) throw new Error('Name the CSV\'s column that holds the incumbent\'s decision (the baseline).');
    const source = await this.csv();
    if (!source) throw new Error('Choose the labels CSV under Data: the baseline column is read from it.');
    const b = await runFiles([...this.inputB.files], 'The run');
    const results = b.results.text !== undefined ? b.results.text : await b.results.file.text();
    let config = defaultConfig();
    if (b.summary) {
      try { config = { ...config, ...JSON.parse(b.summary.text).config }; } catch { /* the defaults */ }
    }
    if (b.runId) config.runId = b.runId;
    const run = new ShadowRun(source.csvText, config, now());
    run.compareWithColumn(column);
    const restored = run.restore(results, false);
    if (restored === 0) throw new Error(`${b.results.name}: no row of it is a row of ${source.csvName}: choose the CSV the run read.`);
    this.names = [`column-${column}`, b.runId || 'run'];
    // Every row restored: the run ends at its first polls without a request, and
    // its summary's comparison is whole (else it is marked partial: B running).
    if (restored === run.itemCount()) {
      for (let i = 0; i < 100; i++) {
        const out = run.poll(now());
        if (!out || out.type === 'send') break;
        if (out.type === 'finished') return out.summary.comparison;
      }
    }
    return run.comparison(now());
  }

  show(c) {
    this.comparison = c;
    this.downloads.hidden = false;
    const options = { thumbnail: (image) => this.thumbnail(image), urlView: false };
    if (this.view) this.view.update(c);
    else this.view = renderComparison(this.container, c, options);
    this.container.scrollIntoView({ block: 'start' });
  }

  download(kind) {
    const name = compareFileName(this.names[0], this.names[1]);
    if (kind === 'json') offerDownload(name, JSON.stringify(this.comparison, null, 2), 'application/json');
    else offerDownload(name.replace(/\.json$/, '.html'), comparisonHtml(this.comparison), 'text/html');
  }
}
