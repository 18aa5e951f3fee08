// The results explorer in headless Chromium, in its two places: the page (live
// during a run, at its end, and for an earlier run opened from its files) and the
// CLI's self-contained HTML report opened from disk with every network request
// blocked. Known data for the filters and the matrix click-through; hostile labels,
// image names and CSV name in every view, with no script run.
//
// The CLI binary is $SHADOW_BATCH_BIN, else target/debug/shadow-batch under
// $CARGO_TARGET_DIR (relative to the repository root) or the repository's target/.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

import {
  BIN, CSV, IMAGES, ROOT, launch, newPage as newPageIn, serve, shutdown,
} from './harness.mjs';

before(launch);
after(shutdown);

/** A page that records dialogs and page errors (a `__pwned` flag set by any
 * injected script is read by the tests). */
const newPage = (viewport = { width: 1200, height: 900 }) => newPageIn(viewport);

async function openApp(url) {
  const { page } = await newPage();
  await page.goto(url);
  await page.waitForFunction(() => window.__shadow && window.__shadow.explorer);
  return page;
}

function runCli(args) {
  const r = spawnSync(BIN, args, { encoding: 'utf8', env: { ...process.env, OPENAI_API_KEY: '' } });
  return r;
}

const caption = (page) => page.textContent('.sx-results caption');
const shownRows = (page) => page.$$eval('.sx-results tbody tr[data-row]', (trs) => trs.map((tr) => Number(tr.dataset.row)));

// Known results: labels bird, cat, dog; 8 compared, 4 agree; rows 5 and 8 failed.
const KNOWN = [
  ['cat', 'cat', 100, 1], ['cat', 'dog', 250, 2], ['cat', 'cat', 120, 1], ['dog', 'dog', 90, 1],
  ['dog', 'cat', 300, 1], ['dog', null, 500, 3, 'HTTP 500: server error', 'http'], ['bird', 'bird', 80, 1],
  ['bird', 'cat', 110, 1], ['bird', null, null, 0, 'images/digit-0008.png: not found', 'image'], ['cat', 'dog', 130, 1],
].map(([label, prediction, latencyMs, attempts, error, errorKind], row) => JSON.stringify({
  row, line: row + 2, image: `images/digit-${String(row).padStart(4, '0')}.png`, label, prediction,
  agreement: prediction === null ? null : prediction === label, status: prediction === null ? 'failed' : 'success',
  attempts, latencyMs, error: error || null, ...(errorKind ? { errorKind } : {}), finishedAt: '2025-01-24T10:30:00.000Z',
})).join('\n') + '\n';

test('explorer: filters and the matrix click-through list exactly the expected rows', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'shadow-known-'));
  const results = join(dir, 'shadow-mode-batch-results-2025-01-24T10-30-00-000Z.jsonl');
  writeFileSync(results, KNOWN);
  const page = await openApp(await serve(['--latency-ms', '0']));
  await page.click('#open-run summary');
  await page.setInputFiles('#open-run-files', results);
  await page.waitForSelector('#explorer[data-ready]');

  // Headline: computed from the results (no summary), and it says so.
  assert.equal(await page.textContent('.sx-status'), 'interrupted');
  assert.match(await page.textContent('.sx-stats'), /50\.0%/);
  assert.match(await page.textContent('.sx-notes'), /computed from the 10 finished results/);
  assert.match(await caption(page), /Rows 1–10 of 10/);

  // The matrix: labels bird, cat, dog; the cat -> dog cell lists rows 1 and 9.
  const cell = '.sx-matrix button[data-label="1"][data-predicted="2"]';
  assert.equal(await page.textContent(cell), '2');
  await page.click(cell);
  assert.deepEqual(await shownRows(page), [1, 9]);
  assert.equal(await page.inputValue('.sx-filters select[name=label]'), '1');
  assert.equal(await page.inputValue('.sx-filters select[name=predicted]'), '2');
  // The failed column of the dog row lists the failed dog.
  await page.click('.sx-matrix tbody tr:nth-child(3) .sx-failcol button');
  assert.deepEqual(await shownRows(page), [5]);
  await page.click('.sx-clear');
  assert.deepEqual(await shownRows(page), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);

  await page.check('.sx-filters input[name=disagreements]');
  assert.deepEqual(await shownRows(page), [1, 4, 7, 9]);
  await page.uncheck('.sx-filters input[name=disagreements]');
  await page.check('.sx-filters input[name=failures]');
  assert.deepEqual(await shownRows(page), [5, 8]);
  await page.uncheck('.sx-filters input[name=failures]');
  await page.selectOption('.sx-filters select[name=label]', '2');
  assert.deepEqual(await shownRows(page), [3, 4, 5]);
  await page.selectOption('.sx-filters select[name=label]', '-1');
  await page.selectOption('.sx-filters select[name=predicted]', '1');
  assert.deepEqual(await shownRows(page), [0, 2, 4, 7]);
  await page.selectOption('.sx-filters select[name=predicted]', '-1');
  await page.fill('.sx-filters input[type=search]', 'NOT FOUND');
  await page.waitForFunction(() => document.querySelectorAll('.sx-results tbody tr[data-row]').length === 1);
  assert.deepEqual(await shownRows(page), [8]);
  await page.fill('.sx-filters input[type=search]', '');
  await page.waitForFunction(() => document.querySelectorAll('.sx-results tbody tr[data-row]').length === 10);

  // Sorting: latency descending puts the 500 ms row first; a row without latency last.
  await page.click('.sx-results th[data-key=latency] button');
  await page.click('.sx-results th[data-key=latency] button');
  assert.equal(await page.getAttribute('.sx-results th[data-key=latency]', 'aria-sort'), 'descending');
  const byLatency = await shownRows(page);
  assert.deepEqual(byLatency.slice(0, 3), [5, 4, 1]);

  // Errors, grouped: one group per message; "show" lists its rows.
  const groups = await page.$$eval('.sx-errors tbody tr', (trs) => trs.map((tr) => tr.textContent));
  assert.equal(groups.length, 2);
  await page.click('.sx-errors tbody tr:has-text("server error") button');
  assert.deepEqual(await shownRows(page), [5]);

  // No images folder chosen: every thumbnail is a placeholder that says why.
  const placeholders = await page.$$eval('.sx-noimg', (s) => s.map((x) => x.title));
  assert.ok(placeholders.length >= 1 && placeholders.every((t) => /images folder/.test(t)), placeholders.join('|'));
  assert.deepEqual(page.errors, []);
});

test('explorer: the page shows it during a run and at its end, with thumbnails from the chosen folder', async () => {
  const page = await openApp(await serve(['--latency-ms', '40']));
  await page.setInputFiles('#csv', CSV);
  await page.setInputFiles('#images', IMAGES);
  await page.click('#start');
  await page.waitForFunction(() => document.querySelector('.sx-status')?.textContent === 'running', null, { timeout: 30_000 });
  await page.waitForSelector('#status[data-final]', { timeout: 90_000 });
  await page.waitForFunction(() => document.querySelector('.sx-status')?.textContent.startsWith('completed'));
  const summary = await page.evaluate(() => window.__shadow.summary);
  assert.match(await caption(page), /of 300$/);
  const agreement = `${(summary.evaluation.agreementRate * 100).toFixed(1)}%`;
  assert.equal(await page.textContent('.sx-stat.sx-main .sx-stat-value'), agreement);
  await page.locator('.sx-results img').first().scrollIntoViewIfNeeded();
  await page.waitForFunction(() => [...document.querySelectorAll('.sx-results img')].slice(0, 5).every((i) => i.complete && i.naturalWidth > 0));
  assert.deepEqual(page.errors, []);
});

/** Runs the CLI on `csv` into `out` and returns its files. */
function cliRun(csv, out, extra = []) {
  const r = runCli([csv, '--out-dir', out, '--seed', '42', '--mock-latency-ms', '5', ...extra]);
  assert.ok(r.status === 0 || r.status === 1, `exit ${r.status}: ${r.stderr}`);
  const names = readdirSync(out);
  const pick = (re) => join(out, names.find((n) => re.test(n)));
  return {
    stdout: r.stdout,
    summary: pick(/^shadow-mode-batch-\d.*\.json$/),
    results: pick(/^shadow-mode-batch-results-.*\.jsonl$/),
    report: pick(/^shadow-mode-batch-report-.*\.html$/),
  };
}

/** Opens a report from disk; every request that is not a file is aborted and recorded. */
async function openReport(path, viewport) {
  const { context, page } = await newPage(viewport);
  const attempted = [];
  await context.route('**/*', (route) => {
    const url = route.request().url();
    if (url.startsWith('file:')) return route.continue();
    attempted.push(url);
    return route.abort();
  });
  page.on('request', (r) => { if (!/^(file|data|blob):/.test(r.url())) attempted.push(r.url()); });
  await page.goto(pathToFileURL(path).href);
  await page.waitForSelector('#explorer[data-ready]');
  return { page, attempted };
}

test('report: opened from disk with the network blocked, it shows the summary\'s numbers and the images', async () => {
  const out = mkdtempSync(join(tmpdir(), 'shadow-report-'));
  // No retries and 30% injected 500s: failures to show.
  const run = cliRun(CSV, out, ['--mock-error-rate', '0.3', '--mock-accuracy', '0.8', '50', '0', '0']);
  assert.match(run.stdout, /Report: {3}.*shadow-mode-batch-report-.*\.html/);
  const summary = JSON.parse(readFileSync(run.summary, 'utf8'));
  assert.ok(summary.statistics.failed > 0, 'the run has failures to show');
  const { page, attempted } = await openReport(run.report);

  const ev = summary.evaluation;
  assert.equal(await page.textContent('.sx-stat.sx-main .sx-stat-value'), `${(ev.agreementRate * 100).toFixed(1)}%`);
  const main = await page.textContent('.sx-stat.sx-main .sx-stat-detail');
  assert.ok(main.includes(`n = ${ev.compared}`), main);
  assert.ok(main.includes(`${(ev.agreementInterval.low * 100).toFixed(1)}–${(ev.agreementInterval.high * 100).toFixed(1)}%`), main);
  assert.equal(await page.textContent('.sx-status'), 'completed with failures');
  const stats = await page.textContent('.sx-stats');
  assert.ok(stats.includes(`${summary.statistics.processed} / ${summary.statistics.total}`), stats);
  assert.ok(stats.includes(`Failed${summary.statistics.failed}`), stats);
  // The cost tile reads the core's `cost` fields: tokens per image when the model
  // has no known price (the mock's), never a field name as its figure.
  const cost = summary.cost;
  assert.ok(cost.itemsWithUsage > 0 && cost.amountUsd === null, JSON.stringify(cost));
  const tokens = Math.round(cost.tokensPerImage).toLocaleString('en-US');
  assert.ok(stats.includes(`Cost${tokens} tokens an imageno price known for this model`), stats);
  assert.ok(!stats.includes('itemsWithUsage'), stats);
  // Every cell of the matrix is the summary's.
  const matrix = await page.$$eval('.sx-matrix tbody tr', (trs) => trs.map((tr) =>
    [...tr.querySelectorAll('td:not(.sx-failcol) button')].map((b) => (b.textContent === '·' ? 0 : Number(b.textContent.replace(/,/g, ''))))));
  assert.deepEqual(matrix, ev.confusionMatrix);
  assert.match(await caption(page), /of 300$/);
  await page.check('.sx-filters input[name=failures]');
  assert.match(await caption(page), new RegExp(`of ${summary.statistics.failed} \\(filtered from 300\\)`));
  // Thumbnails load by relative path from the report's folder (the --out-dir) to the images.
  await page.uncheck('.sx-filters input[name=failures]');
  await page.waitForFunction(() => [...document.querySelectorAll('.sx-results img')].slice(0, 5).every((i) => i.complete && i.naturalWidth > 0));
  assert.deepEqual(attempted, [], 'the report made no network request');
  assert.deepEqual(page.errors, []);
  assert.equal(await page.$$eval('svg.sx-chart', (s) => s.length), 4);
  // Issue 21: every batch of the 300 rows has a throughput (only the first had one).
  const rates = await page.evaluate(() => JSON.parse(document.getElementById('explorer-data').textContent).batches.map((b) => b.throughputPerSec));
  assert.equal(rates.length, 6);
  assert.ok(rates.every((r) => typeof r === 'number' && r > 0), JSON.stringify(rates));
});

test('report: `shadow-batch report` writes it for an interrupted run from its results file alone', async () => {
  const out = mkdtempSync(join(tmpdir(), 'shadow-report-only-'));
  const results = join(out, 'shadow-mode-batch-results-2025-01-24T10-30-00-000Z.jsonl');
  writeFileSync(results, KNOWN);
  const r = runCli(['report', results, '--images-dir', join(ROOT, 'training-data')]);
  assert.equal(r.status, 0, r.stderr);
  const report = join(out, 'shadow-mode-batch-report-2025-01-24T10-30-00-000Z.html');
  const { page, attempted } = await openReport(report);
  assert.equal(await page.textContent('.sx-status'), 'interrupted');
  assert.match(await page.textContent('.sx-stats'), /50\.0%/);
  await page.click('.sx-matrix button[data-label="1"][data-predicted="2"]');
  assert.deepEqual(await shownRows(page), [1, 9]);
  assert.deepEqual(attempted, []);
  // The row whose image the folder lacks gets the placeholder after its load fails.
  assert.deepEqual(page.errors, []);
});

test('report: past its row cap it says at the top that its rows are a sample, and its figures are the whole run\'s', async () => {
  const out = mkdtempSync(join(tmpdir(), 'shadow-report-capped-'));
  const results = join(out, 'shadow-mode-batch-results-2025-01-24T10-30-00-000Z.jsonl');
  writeFileSync(results, KNOWN);
  // 10 rows, 6 of them disagreements or failures; a cap of 7 keeps those 6 and 1 agreeing row.
  const r = runCli(['report', results, '--images-dir', join(ROOT, 'training-data'), '--max-rows', '7']);
  assert.equal(r.status, 0, r.stderr);
  const { page, attempted } = await openReport(join(out, 'shadow-mode-batch-report-2025-01-24T10-30-00-000Z.html'));
  const note = await page.textContent('.sx-head .sx-sample');
  assert.match(note, /shows 7 of the run's 10 rows/);
  assert.match(note, /every disagreement and failure \(6\)/);
  assert.match(note, /a seeded random sample of 1 of the 4 agreeing rows/);
  assert.match(note, /shadow-mode-batch-results-2025-01-24T10-30-00-000Z\.jsonl/);
  // At the top: before the figures.
  assert.ok(await page.evaluate(() => {
    const sample = document.querySelector('.sx-sample');
    return !!(sample.compareDocumentPosition(document.querySelector('.sx-stats')) & Node.DOCUMENT_POSITION_FOLLOWING);
  }));
  // The figures count all 10 rows; the table holds 7, and says of how many.
  assert.match(await page.textContent('.sx-stats'), /50\.0%/);
  assert.match(await caption(page), /of 7, a sample of the run's 10/);
  await page.click('.sx-matrix button[data-label="1"][data-predicted="2"]');
  assert.deepEqual(await shownRows(page), [1, 9]);
  assert.deepEqual(attempted, []);
  assert.deepEqual(page.errors, []);
});

const HOSTILE_LABEL = '<img src=x onerror=window.__pwned=1>';
const HOSTILE_LABEL_2 = '</script><script>window.__pwned=2</script>';

function hostileRun() {
  const dir = mkdtempSync(join(tmpdir(), 'shadow-hostile-'));
  mkdirSync(join(dir, 'images', '<'), { recursive: true });
  const nameA = `<img src=x onerror=window.__pwned=3>.png`;
  const nameB = `<\u002fscript><img src=x onerror=window.__pwned=4>.png`; // "<" folder, then a file
  copyFileSync(join(IMAGES, 'digit-0000.png'), join(dir, 'images', nameA));
  copyFileSync(join(IMAGES, 'digit-0001.png'), join(dir, 'images', '<', 'script><img src=x onerror=window.__pwned=4>.png'));
  const q = (s) => `"${s.replace(/"/g, '""')}"`;
  const rows = [
    ['images/' + nameA, HOSTILE_LABEL], ['images/' + nameB, HOSTILE_LABEL_2], ['images/' + nameA, 'cat'],
    ['images/' + nameB, HOSTILE_LABEL], ['images/missing <b onmouseover=window.__pwned=5>.png', HOSTILE_LABEL_2],
  ];
  const csv = join(dir, `${HOSTILE_LABEL}.csv`);
  writeFileSync(csv, 'image,label\n' + rows.map(([i, l]) => `${q(i)},${q(l)}`).join('\n') + '\n');
  return { dir, csv, run: cliRun(csv, dir, ['--mock-accuracy', '0.5']) };
}

async function assertInert(page, where) {
  assert.deepEqual(page.dialogs, [], where);
  assert.deepEqual(page.errors, [], where);
  assert.equal(await page.evaluate(() => window.__pwned), undefined, `${where}: an injected script ran`);
  const injected = await page.evaluate(() => ({
    handlers: [...document.querySelectorAll('#explorer *')].filter((e) => [...e.attributes].some((a) => a.name.startsWith('on'))).length,
    scripts: document.querySelectorAll('#explorer script').length,
    badImages: [...document.querySelectorAll('#explorer img')].filter((i) => i.getAttribute('src') === 'x').length,
    bold: document.querySelectorAll('#explorer b').length,
  }));
  assert.deepEqual(injected, { handlers: 0, scripts: 0, badImages: 0, bold: 0 }, where);
  const text = await page.textContent('#explorer');
  for (const s of [HOSTILE_LABEL, HOSTILE_LABEL_2, 'onerror=window.__pwned=3>.png', 'missing <b onmouseover=window.__pwned=5>.png']) {
    assert.ok(text.includes(s), `${where}: ${s} shown as text`);
  }
  // In every view: headline (CSV name), matrix, per-label table, results table, error groups.
  assert.ok((await page.textContent('.sx-meta')).includes(HOSTILE_LABEL), `${where}: headline`);
  assert.ok((await page.textContent('.sx-matrix')).includes(HOSTILE_LABEL_2), `${where}: matrix`);
  assert.ok((await page.textContent('.sx-perlabel')).includes(HOSTILE_LABEL), `${where}: per label`);
  assert.ok((await page.textContent('.sx-errors')).includes('<b onmouseover'), `${where}: errors`);
  await page.fill('.sx-filters input[type=search]', '<img');
  await page.waitForFunction(() => document.querySelector('.sx-results caption').textContent.includes('filtered'));
  assert.equal(await page.evaluate(() => window.__pwned), undefined, where);
}

test('hostile labels, image names and CSV name stay text in the report and in the page', async () => {
  const { run } = hostileRun();
  const { page: report, attempted } = await openReport(run.report);
  // The real images (hostile names and all) load as thumbnails.
  await report.waitForFunction(() => [...document.querySelectorAll('.sx-results img')].filter((i) => i.complete && i.naturalWidth > 0).length >= 2);
  await assertInert(report, 'report');
  assert.deepEqual(attempted, []);
  // The report's options list the hostile labels as text.
  const options = await report.$$eval('.sx-filters select[name=label] option', (o) => o.map((x) => x.textContent));
  assert.ok(options.includes(HOSTILE_LABEL_2));

  const page = await openApp(await serve(['--latency-ms', '0']));
  await page.click('#open-run summary');
  await page.setInputFiles('#open-run-files', [run.results, run.summary]);
  await page.waitForSelector('#explorer[data-ready]');
  await assertInert(page, 'page');
});

test('report: a file that is not a run file is refused, naming it and what to give instead', () => {
  const r = runCli(['report', CSV]);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /labels\.csv: not a file of a shadow-batch run/);
  assert.match(r.stderr, /progress, summary or results file/);
});

test('a batch-API run opens in the page from its files, its provider journal among them', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'shadow-batchapi-'));
  const r = runCli([CSV, '--out-dir', dir, '--via', 'batch-api', '--poll-interval', '0.1']);
  assert.ok(r.status === 0 || r.status === 1, `exit ${r.status}: ${r.stderr}`);
  const names = readdirSync(dir);
  const files = names.filter((n) => n.startsWith('shadow-mode-batch-') && !n.endsWith('.html')).map((n) => join(dir, n));
  assert.equal(files.length, 4, names.join(', '));
  const journal = files.find((f) => f.includes('-provider-'));
  assert.ok(journal, 'the provider journal');
  const page = await openApp(await serve(['--latency-ms', '0']));
  await page.click('#open-run summary');
  // The provider journal alone holds no results: refused, saying what to choose.
  await page.setInputFiles('#open-run-files', [journal]);
  await page.waitForFunction(() => !document.getElementById('explorer-error').hidden);
  assert.match(await page.textContent('#explorer-error'), /provider journal of a batch-API run/);
  // All four files: the provider journal is left aside, the rest read.
  await page.setInputFiles('#open-run-files', files);
  await page.waitForSelector('#explorer[data-ready]');
  assert.equal(await page.isHidden('#explorer-error'), true);
  assert.equal(await page.textContent('.sx-status'), 'completed');
  assert.match(await caption(page), /of 300/);
});

/** `shadow-batch mock-server --port 0 FLAGS` started: its root URL and a stop. */
async function mockServer(flags) {
  const child = spawn(BIN, ['mock-server', '--port', '0', ...flags], { stdio: ['ignore', 'pipe', 'ignore'] });
  const url = await new Promise((resolve, reject) => {
    let text = '';
    child.stdout.on('data', (chunk) => {
      text += chunk;
      const m = /listening on (http\S+)\/v1/.exec(text);
      if (m) resolve(m[1]);
    });
    child.on('exit', () => reject(new Error(`mock-server ended: ${text}`)));
  });
  return { url, stop: () => child.kill() };
}

// Issue 25: a Gemini or Azure batch-API run's files open as the others' do (the
// provider journal's records are the same whatever the provider).
for (const [provider, env, args] of [
  ['gemini', { GEMINI_API_KEY: 'AIza-page-test' }, (root) => ['--provider', 'gemini', '--base-url', root, '--model', 'gemini-mock']],
  ['azure', { AZURE_OPENAI_API_KEY: 'azure-page-test' }, (root) => ['--provider', 'azure', '--base-url', root, '--deployment', 'batch-d']],
]) {
  test(`${provider}: a batch-API run opens in the page from its files`, async () => {
    const mock = await mockServer(['--batch-ms', '300', '--error-rate', '0']);
    try {
      const dir = mkdtempSync(join(tmpdir(), `shadow-batch-${provider}-`));
      const r = spawnSync(BIN, [CSV, '--out-dir', dir, '--via', 'batch-api', '--poll-interval', '0.1', ...args(mock.url)],
        { encoding: 'utf8', env: { ...process.env, OPENAI_API_KEY: '', ...env } });
      assert.equal(r.status, 0, r.stderr);
      const files = readdirSync(dir).filter((n) => n.startsWith('shadow-mode-batch-') && !n.endsWith('.html')).map((n) => join(dir, n));
      assert.equal(files.length, 4, files.join(', '));
      const journal = readFileSync(files.find((f) => f.includes('-provider-')), 'utf8');
      // A Gemini shard this small goes inline (no file); Azure's is uploaded.
      assert.match(journal, provider === 'gemini' ? /"batchId":"batches\// : /"fileId":"file-mock/);
      const page = await openApp(await serve(['--latency-ms', '0']));
      await page.click('#open-run summary');
      await page.setInputFiles('#open-run-files', files);
      await page.waitForSelector('#explorer[data-ready]');
      assert.equal(await page.isHidden('#explorer-error'), true);
      assert.equal(await page.textContent('.sx-status'), 'completed');
      assert.match(await caption(page), /of 300/);
    } finally {
      mock.stop();
    }
  });
}

// ---------------------------------------------------------------------------
// Issue 21: the report right at 2,000 batches, the headline's tiles, user text
// ---------------------------------------------------------------------------

const VIEWPORTS = [{ width: 1280, height: 900 }, { width: 390, height: 844 }];

/**
 * A summary of `batches` batches of 50 as an older version wrote it: reports
 * arriving four to a millisecond tick (10,000 rows/s in truth) with a
 * `throughputPerSec` of 302,500, retries on every seventh batch.
 */
function writeSummary(dir, { batches, agreementRate, kappa, cost }) {
  let agreements = 0;
  const reports = [];
  for (let i = 0; i < batches; i++) {
    const agreed = Math.round(50 * agreementRate) + ((i % 5) - 2);
    agreements += agreed;
    reports.push({
      batchNumber: i + 1, totalBatches: batches, batchStartIndex: i * 50, batchEndIndex: i * 50 + 49, batchSize: 50,
      batchSuccessful: 50, batchFailed: 0, successful: (i + 1) * 50, failed: 0, processed: (i + 1) * 50, agreements,
      elapsedMs: 20 * (Math.floor(i / 4) + 1), retries: i % 7 === 0 ? 3 : 0, rateLimitHits: i % 13 === 0 ? 1 : 0,
      latencyP50Ms: 100 + (i % 9), latencyP95Ms: 200 + (i % 11), throughputPerSec: 302500, drift: i === 1499,
    });
  }
  const n = batches * 50;
  const runId = '2026-12-06T10-00-00-000Z';
  const summary = {
    runId, status: 'completed', csvPath: 'labels.csv',
    statistics: { total: n, processed: n, successful: n, failed: 0, remaining: 0 },
    evaluation: {
      compared: n, agreements, agreementRate: agreements / n,
      agreementInterval: { low: agreements / n - 0.002, high: agreements / n + 0.002 },
      kappa, labels: ['cat', 'dog'], confusionMatrix: [[agreements, n - agreements], [0, 0]], perLabel: [],
    },
    cost, allReports: reports, config: { providerLabel: 'openai', provider: { model: 'gpt-4o-mini' } },
  };
  const path = join(dir, `shadow-mode-batch-${runId}.json`);
  writeFileSync(path, JSON.stringify(summary));
  const r = runCli(['report', path]);
  assert.equal(r.status, 0, r.stderr);
  return join(dir, `shadow-mode-batch-report-${runId}.html`);
}

const embedded = (page) => page.evaluate(() => JSON.parse(document.getElementById('explorer-data').textContent));

/** Nothing in the headline or the charts is wider than its box or the page. */
async function assertFits(page, where) {
  const over = await page.evaluate(() => {
    const wide = [...document.querySelectorAll('.sx-stat, .sx-fig')].filter((e) => e.scrollWidth > e.clientWidth + 1).map((e) => e.textContent.slice(0, 60));
    const right = Math.max(...[...document.querySelectorAll('.sx-stat, .sx-fig')].map((e) => e.getBoundingClientRect().right));
    return { wide, pageWider: document.documentElement.scrollWidth > window.innerWidth, right: right > window.innerWidth + 1 };
  });
  assert.deepEqual(over, { wide: [], pageWider: false, right: false }, where);
}

test('report at 2,000 batches: binned charts with a band, throughput over real time in rows/s, at 1,280 and 390 px', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'shadow-2000-'));
  const report = writeSummary(dir, { batches: 2000, agreementRate: 0.9, kappa: { value: 0.8, standardError: 0.01 } });
  for (const viewport of VIEWPORTS) {
    const where = `${viewport.width} px`;
    const { page } = await openReport(report, viewport);
    const charts = await page.$$eval('.sx-fig[data-chart]', (figs) => figs.map((f) => ({
      chart: f.dataset.chart, bins: Number(f.dataset.bins || 0), bands: f.querySelectorAll('.sx-binband').length,
      dots: f.querySelectorAll('circle').length, hits: f.querySelectorAll('.sx-hit').length,
      title: f.querySelector('figcaption').textContent, note: (f.querySelector('.sx-binnote') || {}).textContent || '',
    })));
    assert.equal(charts.length, 4, where);
    for (const c of charts) {
      assert.ok(c.bins > 0 && c.bins <= 80, `${where}: ${c.chart} binned: ${JSON.stringify(c)}`);
      assert.ok(c.bands >= 1, `${where}: ${c.chart} has a band`);
      assert.equal(c.hits, c.bins, `${where}: a tooltip per bin`);
      assert.match(c.note, /^2000 batches in \d+ bins of 25/, where);
    }
    const agreement = charts.find((c) => c.chart === 'agreement');
    assert.ok(agreement.dots <= 1, `${where}: one drift marker, no smear of dots (${agreement.dots})`);
    assert.match(charts.find((c) => c.chart === 'throughput').title, /rows per second, over the last second or more/);
    assert.match(charts.find((c) => c.chart === 'retries').title, /per batch/);
    // Throughput from the reports' times over a second or more (10,000 rows/s in
    // truth), not the 302,500 rows/s the old reports carry.
    const rates = (await embedded(page)).batches.map((b) => b.throughputPerSec);
    assert.ok(rates.every((r) => typeof r === 'number'), `${where}: every batch has a throughput`);
    assert.ok(Math.max(...rates) <= 11_000, `${where}: max ${Math.max(...rates)}`);
    assert.ok(rates.slice(100).every((r) => r >= 9_000), where);
    await assertFits(page, where);
    assert.deepEqual(page.errors, []);
    await page.context().close();
  }
});

test('headline: the cost tile in dollars with its price and date, agreement coloured and worded by kappa, at 1,280 and 390 px', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'shadow-tiles-'));
  const cost = {
    itemsWithUsage: 300, tokensPerImage: 2853.2,
    price: { inputPerMillion: 0.15, outputPerMillion: 0.6, source: 'listPrice', model: 'gpt-4o-mini', checked: '2026-12-01' },
    amountUsd: 0.1322, usdPerImage: 0.00044,
  };
  const chance = writeSummary(dir, { batches: 6, agreementRate: 0.093, kappa: { value: 0.004, standardError: 0.01 }, cost });
  for (const viewport of VIEWPORTS) {
    const where = `${viewport.width} px`;
    const { page } = await openReport(chance, viewport);
    const tile = await page.$eval('.sx-cost', (e) => ({
      value: e.querySelector('.sx-stat-value').textContent, detail: e.querySelector('.sx-stat-detail').textContent,
    }));
    assert.deepEqual(tile, { value: '$0.13', detail: '$0.00044 an image · gpt-4o-mini list price, checked 2026-12-01' }, where);
    assert.ok(!(await page.textContent('.sx-stats')).includes('itemsWithUsage'), `${where}: no raw keys`);
    const main = await page.$eval('.sx-stat.sx-main', (e) => ({
      cls: e.className, colour: getComputedStyle(e.querySelector('.sx-stat-value')).color,
      verdict: (e.querySelector('.sx-stat-verdict') || {}).textContent,
    }));
    assert.match(main.cls, /sx-m-bad/, where);
    assert.equal(main.colour, 'rgb(163, 32, 27)', `${where}: red, not green, at kappa 0`);
    assert.equal(main.verdict, 'κ 0.00: no better than chance', where);
    await assertFits(page, where);
    await page.context().close();
  }
  const good = writeSummary(mkdtempSync(join(tmpdir(), 'shadow-tiles-')), { batches: 6, agreementRate: 0.93, kappa: { value: 0.86, standardError: 0.02 } });
  const { page } = await openReport(good);
  assert.equal(await page.textContent('.sx-stat.sx-main .sx-stat-verdict'), 'κ 0.86: almost perfect agreement beyond chance');
  assert.equal(await page.$eval('.sx-stat.sx-main .sx-stat-value', (e) => getComputedStyle(e).color), 'rgb(23, 102, 58)');
  await page.context().close();
});

const RLO_LABEL = '\u202eoverride LTR';
const LONG_LABEL = `long ${'label '.repeat(100)}end`;

test('labels with a right-to-left override or 600 characters: isolated, escaped, cut with the whole text on hover and click, at 1,280 and 390 px', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'shadow-bidi-'));
  mkdirSync(join(dir, 'images'));
  const rows = [];
  for (let i = 0; i < 6; i++) {
    copyFileSync(join(IMAGES, `digit-000${i}.png`), join(dir, 'images', `${i}.png`));
    rows.push(`images/${i}.png,"${[RLO_LABEL, LONG_LABEL, 'cat'][i % 3]}"`);
  }
  const csv = join(dir, 'labels.csv');
  writeFileSync(csv, 'image,label\n' + rows.join('\n') + '\n');
  const run = cliRun(csv, dir, ['--mock-accuracy', '0.5']);
  for (const viewport of VIEWPORTS) {
    const where = `${viewport.width} px`;
    const { page } = await openReport(run.report, viewport);
    const cells = await page.$$eval('.sx-results td.sx-label', (tds) => tds.map((td) => ({
      text: td.textContent, isolated: !!td.querySelector('bdi') || td.textContent === '—', height: td.getBoundingClientRect().height,
      title: (td.querySelector('bdi[title]') || {}).title || null,
    })));
    assert.equal(cells.length, 12, where);
    for (const c of cells) {
      assert.ok(c.isolated, `${where}: ${c.text} in a <bdi>`);
      assert.ok(!/[\u202a-\u202e\u2066-\u2069]/.test(c.text), `${where}: no raw override drawn: ${c.text}`);
      assert.ok(c.height < 80, `${where}: row ${c.height}px tall`);
    }
    assert.ok(cells.some((c) => c.text === '\\u{202e}override LTR'), `${where}: the override shown as an escape`);
    const long = cells.find((c) => c.title);
    assert.equal(long.title, LONG_LABEL, `${where}: the whole label on hover`);
    assert.equal(long.text, `${LONG_LABEL.slice(0, 80)}…`, where);
    // The matrix, the per-label table and the filter's options draw them the same way.
    for (const sel of ['.sx-matrix', '.sx-perlabel']) {
      const text = await page.textContent(sel);
      assert.ok(!/[\u202a-\u202e]/.test(text) && text.includes('\\u{202e}override LTR'), `${where}: ${sel}`);
      assert.ok(!text.includes(LONG_LABEL), `${where}: ${sel} cuts the long label`);
    }
    const spill = await page.$$eval('.sx-perlabel th[scope=row], .sx-results td.sx-label', (cells) => cells
      .filter((c) => [...c.querySelectorAll('bdi')].some((b) => b.getBoundingClientRect().right > c.getBoundingClientRect().right + 1)).length);
    assert.equal(spill, 0, `${where}: a cut label stays inside its cell`);
    const options = await page.$$eval('.sx-filters select[name=label] option', (o) => o.map((x) => x.textContent));
    assert.ok(options.includes('\\u{202e}override LTR'), where);
    // A click shows the whole label in place.
    await page.click('.sx-results td.sx-label bdi.sx-cut');
    assert.ok((await page.textContent('.sx-results')).includes(LONG_LABEL), `${where}: the whole label after a click`);
    assert.deepEqual(page.errors, []);
    await page.context().close();
  }
});

test('report: the gate (--require) and its verdict in the headline, and an error group\'s example, at 1,280 and 390 px', async () => {
  // A mock run at 0.85 that misses one of three requirements: exit 3.
  const out = mkdtempSync(join(tmpdir(), 'shadow-gate-'));
  const r = runCli([CSV, '--out-dir', out, '--seed', '42', '--mock-latency-ms', '5', '--mock-accuracy', '0.85',
    '--require', 'agreement >= 0.90', '--require', 'kappa >= 0.6', '--require', 'recall[3].low >= 0.5']);
  assert.equal(r.status, 3, r.stderr);
  const report = join(out, readdirSync(out).find((n) => /^shadow-mode-batch-report-.*\.html$/.test(n)));
  for (const viewport of VIEWPORTS) {
    const where = `${viewport.width} px`;
    const { page } = await openReport(report, viewport);
    const gate = await page.$eval('.sx-gate', (e) => ({
      cls: e.className, verdict: e.querySelector('.sx-gate-verdict').textContent,
      items: [...e.querySelectorAll('li')].map((li) => ({ text: li.textContent, missed: li.classList.contains('sx-gate-missed') })),
    }));
    assert.match(gate.cls, /sx-bad/, where);
    assert.equal(gate.verdict, 'Gate: FAILED', where);
    assert.equal(gate.items.length, 3, where);
    assert.match(gate.items[0].text, /^✗ agreement 0\.\d\d < 0\.90 required: FAILED$/, where);
    assert.equal(gate.items[0].missed, true, where);
    assert.match(gate.items[1].text, /^✓ kappa 0\.\d\d >= 0\.6 required: passed$/, where);
    assert.equal(gate.items[1].missed, false, where);
    const wider = await page.evaluate(() => document.documentElement.scrollWidth > window.innerWidth);
    assert.equal(wider, false, `${where}: the gate fits the page`);
    assert.deepEqual(page.errors, []);
    await page.context().close();
  }

  // A summary with no gate shows none; an error group whose messages differ in
  // their paths shows its template and the first row's paths as an example.
  const dir = mkdtempSync(join(tmpdir(), 'shadow-groups-'));
  const plain = writeSummary(dir, { batches: 2, agreementRate: 0.9, kappa: { value: 0.8, standardError: 0.01 } });
  const summaryPath = plain.replace('shadow-mode-batch-report-', 'shadow-mode-batch-').replace(/\.html$/, '.json');
  const summary = JSON.parse(readFileSync(summaryPath, 'utf8'));
  summary.errorGroups = [{
    kind: 'image', message: '<path> resolves to <path>, outside the data folder /data', count: 40, rows: [0, 1], lines: [2, 3],
    details: ['images/a.png, /elsewhere/images/a.png', 'images/b.png, /elsewhere/images/b.png'],
  }];
  writeFileSync(summaryPath, JSON.stringify(summary));
  assert.equal(runCli(['report', summaryPath]).status, 0);
  const { page } = await openReport(plain);
  assert.equal(await page.$('.sx-gate'), null);
  const cell = await page.$eval('.sx-errors td.sx-error', (td) => ({
    message: td.querySelector('bdi').textContent, example: td.querySelector('.sx-detail').textContent,
  }));
  assert.deepEqual(cell, {
    message: '<path> resolves to <path>, outside the data folder /data',
    example: 'e.g. images/a.png, /elsewhere/images/a.png',
  });
  await page.context().close();
});
