// The explorer's compare mode (issue 22): the view `shadow-batch compare A B`
// writes beside its JSON, and the page's "Compare two finished runs", both
// drawing the same comparison with the same renderer (web/explorer/compare.js):
//
// - both sides' headlines, the verdict, the paired 2x2 table; a cell, clicked,
//   lists exactly its rows; the filter "only B right" shows exactly the rows the
//   comparison's JSON puts in that cell, each with both answers; a row opens its
//   view with both answers;
// - the per-label chart draws one mark per label with its interval;
// - in the page, two runs' files chosen give the CLI's verdict and figures; runs
//   over different CSVs are refused with the counts; a file that is not a run's
//   is named.
//
// The CLI binary is $SHADOW_BATCH_BIN, else target/debug/shadow-batch under
// $CARGO_TARGET_DIR (relative to the repository root) or the repository's target/.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync, mkdirSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

import { BIN, CSV, IMAGES, launch, newPage, openPage, serve, shutdown } from './harness.mjs';

before(launch);
after(shutdown);

/** A built-in-mock run of the shipped CSV into `dir`; its files by kind. */
function mockRun(dir, accuracy, seed) {
  mkdirSync(dir, { recursive: true });
  const r = spawnSync(BIN, [CSV, '--mock-accuracy', String(accuracy), '--seed', String(seed), '--mock-latency-ms', '0',
    '--mock-error-rate', '0', '--concurrency', '16', '--out-dir', dir], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const files = readdirSync(dir);
  const pick = (re) => join(dir, files.find((f) => re.test(f)));
  return {
    results: pick(/^shadow-mode-batch-results-.*\.jsonl$/),
    summary: pick(/^shadow-mode-batch-\d.*\.json$/),
    progress: pick(/^shadow-mode-batch-progress-.*\.json$/),
  };
}

let a;
let b;
let json;
let html;
before(() => {
  const root = mkdtempSync(join(tmpdir(), 'shadow-compare-'));
  a = mockRun(join(root, 'a'), 0.8, 1);
  b = mockRun(join(root, 'b'), 0.95, 2);
  const out = join(root, 'out');
  const r = spawnSync(BIN, ['compare', a.results, b.summary, '--out-dir', out], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const files = readdirSync(out);
  json = JSON.parse(readFileSync(join(out, files.find((f) => f.endsWith('.json'))), 'utf8'));
  html = join(out, files.find((f) => f.endsWith('.html')));
  assert.match(r.stdout, new RegExp(`Report: +${html.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
});

/** Opens the comparison's HTML from disk, every request that is not a file refused. */
async function openView(viewport = { width: 1280, height: 900 }) {
  const { context, page } = await newPage(viewport);
  page.attempted = [];
  await context.route('**/*', (route) => {
    if (route.request().url().startsWith('file:')) return route.continue();
    page.attempted.push(route.request().url());
    return route.abort();
  });
  await page.goto(pathToFileURL(html).href);
  await page.waitForSelector('#explorer[data-ready]');
  return page;
}

/** The rows the results table shows (this page): row, cell and both answers. */
const shownRows = (page) => page.$$eval('.sx-cmp-results tbody tr[data-row]', (trs) => trs.map((tr) => ({
  row: Number(tr.dataset.row),
  cell: tr.dataset.cell,
  a: tr.querySelector('[data-side=a]').textContent,
  b: tr.querySelector('[data-side=b]').textContent,
})));

/** Every row the filters show, page after page. */
async function allShownRows(page) {
  const rows = [];
  for (;;) {
    rows.push(...await shownRows(page));
    const next = page.locator('.sx-cmp-rows .sx-pager button[aria-label="next page"]');
    if (await next.isDisabled()) return rows;
    await next.click();
  }
}

const rowsOfCell = (cell) => json.rows.filter((r) => r.cell === cell);

test('the CLI\'s compare view: headlines, verdict, 2x2 cells that list their rows, the "only B right" filter, both answers in the row view', async () => {
  assert.ok(json.table.onlyBRight.count > 10 && json.table.onlyARight.count > 0, JSON.stringify(json.table));
  const page = await openView();
  assert.deepEqual(page.errors, []);
  assert.deepEqual(page.attempted, [], 'nothing fetched from the network');

  // The verdict (the core's words) and both sides' headline figures.
  assert.equal((await page.textContent('.sx-cmp-verdict')).replace(/^Verdict: /, ''), json.verdict);
  const agreement = await page.$$eval('.sx-cmp-sides tr[data-figure=agreement] td', (tds) => tds.map((td) => td.textContent));
  assert.ok(agreement[0].startsWith(`${(json.a.agreementRate * 100).toFixed(1)}%`), agreement[0]);
  assert.ok(agreement[1].startsWith(`${(json.b.agreementRate * 100).toFixed(1)}%`), agreement[1]);
  for (const figure of ['kappa', 'macroF1', 'failed', 'cost', 'latency']) {
    assert.equal(await page.locator(`.sx-cmp-sides tr[data-figure=${figure}]`).count(), 1, figure);
  }

  // Each cell of the 2x2 table says its count; clicked, it lists exactly its rows.
  for (const cell of ['onlyARight', 'bothWrong', 'onlyBRight']) {
    assert.equal(await page.textContent(`.sx-cmp-2x2 [data-cell=${cell}] .sx-cmp-count`), String(json.table[cell].count));
    await page.click(`.sx-cmp-2x2 [data-cell=${cell}]`);
    assert.equal(await page.inputValue('select[name=show]'), cell);
    const rows = await allShownRows(page);
    assert.deepEqual(rows.map((r) => r.row), rowsOfCell(cell).map((r) => r.row), cell);
    assert.equal(rows.length, json.table[cell].count, `every row of ${cell} listed`);
    assert.ok(rows.every((r) => r.cell === cell));
  }

  // The filter "only B right": exactly the rows the JSON puts there, B right and A wrong on each.
  await page.selectOption('select[name=show]', 'all');
  const all = await page.getAttribute('.sx-cmp-rows', 'data-matching');
  assert.equal(Number(all), json.rows.length);
  await page.selectOption('select[name=show]', 'onlyBRight');
  const onlyB = await allShownRows(page);
  const want = rowsOfCell('onlyBRight');
  assert.deepEqual(onlyB.map((r) => r.row), want.map((r) => r.row));
  for (const [i, r] of onlyB.entries()) {
    assert.equal(r.b, `${want[i].b} ✓`);
    assert.equal(r.a, `${want[i].a} ✗`);
    assert.notEqual(want[i].a, want[i].label);
    assert.equal(want[i].b, want[i].label);
  }
  // "They differ": the rows whose answers are not the same, whatever the label.
  await page.selectOption('select[name=show]', 'differ');
  assert.equal(Number(await page.getAttribute('.sx-cmp-rows', 'data-matching')), json.rows.filter((r) => r.a !== r.b).length);

  // A row opens its view: the label and both answers; its thumbnail loaded from beside the CSV.
  await page.selectOption('select[name=show]', 'onlyBRight');
  const first = want[0];
  await page.click(`.sx-cmp-results tr[data-row="${first.row}"] .sx-open`);
  const view = await page.evaluate(() => {
    const d = document.querySelector('dialog.sx-rowview');
    const facts = {};
    for (const f of d.querySelectorAll('.sx-rv-fact')) facts[f.querySelector('dt').textContent] = f.querySelector('dd').textContent;
    const img = d.querySelector('.sx-rv-image img');
    return { open: d.open, facts, verdict: d.querySelector('.sx-rv-verdict').textContent, image: !!img };
  });
  assert.equal(view.open, true);
  assert.equal(view.verdict, 'only B right');
  assert.equal(view.facts.Label, first.label);
  assert.equal(view.facts['A\'s answer'], `${first.a} ✗`);
  assert.equal(view.facts['B\'s answer'], `${first.b} ✓`);
  assert.equal(view.image, true);
  await page.keyboard.press('Escape');
  const thumbs = await page.$$eval('.sx-cmp-results tbody img', (imgs) => imgs.map((i) => i.complete && i.naturalWidth > 0));
  assert.ok(thumbs.length > 0 && thumbs.every(Boolean), 'the thumbnails load from the CSV\'s folder');

  // The per-label chart: one mark per label, each with its interval's whisker.
  assert.equal(await page.locator('.sx-cmp-chart .sx-cmp-delta').count(), json.perLabel.length);
  assert.equal(await page.locator('.sx-cmp-chart .sx-cmp-whisker').count(), json.perLabel.length);
  assert.deepEqual(page.errors, []);
});

test('the page compares two finished runs from their files: the CLI\'s verdict and cells; different CSVs refused with the counts; a file that is not a run\'s named', async () => {
  const origin = await serve();
  const page = await openPage(`${origin}/`);
  await page.click('#compare-runs summary');
  await page.setInputFiles('#compare-a-files', [a.results, a.summary]);
  await page.setInputFiles('#compare-b-files', [b.results, b.progress]);
  await page.click('#compare-go');
  await page.waitForSelector('#comparison[data-ready]');
  assert.equal((await page.textContent('#comparison .sx-cmp-verdict')).replace(/^Verdict: /, ''), json.verdict);
  for (const cell of ['bothRight', 'onlyARight', 'onlyBRight', 'bothWrong']) {
    assert.equal(await page.textContent(`#comparison [data-cell=${cell}] .sx-cmp-count`), String(json.table[cell].count), cell);
  }
  await page.click('#comparison .sx-cmp-2x2 [data-cell=onlyBRight]');
  assert.equal(Number(await page.getAttribute('#comparison .sx-cmp-rows', 'data-matching')), json.table.onlyBRight.count);

  // B over another CSV: 20 rows fewer.
  const dir = mkdtempSync(join(tmpdir(), 'shadow-compare-other-'));
  const lines = readFileSync(CSV, 'utf8').trim().split(/\r?\n/);
  const short = join(dir, 'labels.csv');
  writeFileSync(short, `${lines.slice(0, lines.length - 20).join('\n')}\n`);
  symlinkSync(IMAGES, join(dir, 'images'));
  const otherB = spawnSync(BIN, [short, '--mock-latency-ms', '0', '--allow-outside-data-dir', '--out-dir', join(dir, 'short')], { encoding: 'utf8' });
  assert.equal(otherB.status, 0, otherB.stderr);
  const shortFiles = readdirSync(join(dir, 'short'));
  const shortResults = join(dir, 'short', shortFiles.find((f) => f.endsWith('.jsonl')));
  const shortSummary = join(dir, 'short', shortFiles.find((f) => /^shadow-mode-batch-\d.*\.json$/.test(f)));
  await page.setInputFiles('#compare-b-files', [shortResults, shortSummary]);
  await page.click('#compare-go');
  await page.waitForSelector('#compare-error:not([hidden])');
  const refused = await page.textContent('#compare-error');
  assert.match(refused, /do not look like runs over the same CSV: 280 rows match/);
  assert.match(refused, /compare the matching rows/);

  // A file that is not a run's.
  const bogus = join(dir, 'notes.json');
  writeFileSync(bogus, '{"hello": 1}');
  await page.setInputFiles('#compare-b-files', [bogus]);
  await page.click('#compare-go');
  await page.waitForFunction(() => /notes\.json is not a file of a shadow-batch run/.test(document.querySelector('#compare-error').textContent));
  assert.deepEqual(page.errors, []);
});

test('a page run with a baseline column chosen compares as it goes and at its end; values outside the labels are said', async () => {
  // The shipped CSV with the incumbent's decision: the label on most rows, another
  // digit on every 5th, "review" on every 25th.
  const [header, ...rows] = readFileSync(CSV, 'utf8').trim().split(/\r?\n/);
  const dir = mkdtempSync(join(tmpdir(), 'shadow-compare-column-'));
  const csv = join(dir, 'labels.csv');
  writeFileSync(csv, `${header},decision\n${rows.map((r, i) => {
    const label = Number(r.split(',')[1]);
    return `${r},${i % 25 === 0 ? 'review' : i % 5 === 0 ? (label + 1) % 10 : label}`;
  }).join('\n')}\n`);
  const origin = await serve(['--latency-ms', '150']);
  const page = await openPage(`${origin}/`);
  await page.setInputFiles('#csv', csv);
  await page.setInputFiles('#images', IMAGES);
  await page.waitForFunction(() => document.querySelectorAll('#baseline-column option').length === 2);
  await page.selectOption('#baseline-column', 'decision');
  await page.fill('#batch-size', '25');
  await page.click('#start');
  // Live: the comparison drawn before the end, marked partial.
  await page.waitForFunction(() => !window.__shadow.summary
    && /B \(this run\) is running/.test(document.querySelector('#explorer .sx-cmp-summary .sx-cmp-partial')?.textContent || ''), null, { timeout: 60_000 });
  await page.waitForSelector('#status[data-final]', { timeout: 120_000 });
  const summary = await page.evaluate(() => window.__shadow.summary);
  const c = summary.comparison;
  assert.equal(c.a.name, 'column decision');
  assert.equal(c.matching.by, 'row');
  assert.equal(c.matching.matched, 300);
  assert.equal(c.partial, undefined, 'whole at the end');
  assert.match(c.notes.join(' '), /"review" \(12 rows\)/);
  await page.waitForFunction((verdict) => document.querySelector('#explorer .sx-cmp-summary .sx-cmp-verdict')?.textContent === `Verdict: ${verdict}`, c.verdict);
  assert.equal(await page.textContent('#explorer .sx-cmp-summary [data-cell=onlyBRight] .sx-cmp-count'), String(c.table.onlyBRight.count));
  assert.match(await page.textContent('#explorer .sx-cmp-summary .sx-cmp-notes'), /"review" \(12 rows\)/);
  assert.deepEqual(page.errors, []);
});

test('the page compares a finished run with its CSV\'s baseline column: the figures of the CLI run\'s own --baseline-column comparison', async () => {
  const [header, ...rows] = readFileSync(CSV, 'utf8').trim().split(/\r?\n/);
  const dir = mkdtempSync(join(tmpdir(), 'shadow-compare-finished-column-'));
  const csv = join(dir, 'labels.csv');
  writeFileSync(csv, `${header},decision\n${rows.map((r, i) => {
    const label = Number(r.split(',')[1]);
    return `${r},${i % 30 === 0 ? 'unsure' : i % 4 === 0 ? (label + 3) % 10 : label}`;
  }).join('\n')}\n`);
  symlinkSync(IMAGES, join(dir, 'images'));
  const out = join(dir, 'run');
  const r = spawnSync(BIN, [csv, '--mock-latency-ms', '0', '--allow-outside-data-dir', '--baseline-column', 'decision', '--out-dir', out], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const files = readdirSync(out);
  const results = join(out, files.find((f) => f.endsWith('.jsonl')));
  const summaryFile = join(out, files.find((f) => /^shadow-mode-batch-\d.*\.json$/.test(f)));
  const cli = JSON.parse(readFileSync(summaryFile, 'utf8')).comparison;

  const origin = await serve();
  const page = await openPage(`${origin}/`);
  await page.setInputFiles('#csv', csv);
  await page.click('#compare-runs summary');
  await page.check('input[name=compare-mode][value=column]');
  assert.equal(await page.isVisible('#compare-a-files'), false, 'no run A: the column is A');
  await page.click('#compare-go');
  await page.waitForFunction(() => /Name the CSV's column/.test(document.querySelector('#compare-error').textContent));
  await page.fill('#compare-column', 'decision');
  await page.setInputFiles('#compare-b-files', [results, summaryFile]);
  await page.click('#compare-go');
  await page.waitForSelector('#comparison[data-ready]');
  assert.equal((await page.textContent('#comparison .sx-cmp-verdict')).replace(/^Verdict: /, ''), cli.verdict);
  for (const cell of ['bothRight', 'onlyARight', 'onlyBRight', 'bothWrong', 'onlyAFailed']) {
    assert.equal(await page.textContent(`#comparison [data-cell=${cell}] .sx-cmp-count`), String(cli.table[cell].count), cell);
  }
  assert.equal(await page.$('#comparison .sx-cmp-partial'), null, 'every row restored: whole');
  assert.match(await page.textContent('#comparison .sx-cmp-notes'), /"unsure" \(10 rows\)/);

  // A column the CSV lacks: its other columns said.
  await page.fill('#compare-column', 'verdict');
  await page.click('#compare-go');
  await page.waitForFunction(() => /no column "verdict".*decision/.test(document.querySelector('#compare-error').textContent));
  assert.deepEqual(page.errors, []);
});
