// The page after a run (issue 21, item 6), at 1,280 and 390 px: the explorer is its
// only matrix and per-label table (the old summary block is gone); the HTML report
// downloads beside the JSON files and is the CLI's report of the same files; and
// after a reload and resume the live line counts the retries of every session.
//
// The CLI binary is $SHADOW_BATCH_BIN, else target/debug/shadow-batch under
// $CARGO_TARGET_DIR (relative to the repository root) or the repository's target/.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

import {
  BIN, launch, newPage, serve, shutdown, chooseData, ready, waitForEnd,
} from './harness.mjs';

before(launch);
after(shutdown);

const VIEWPORTS = [{ width: 1280, height: 900 }, { width: 390, height: 844 }];

/** Saves the download a click on `selector` starts into `dir`; returns its name and path. */
async function downloadInto(page, selector, dir) {
  const [download] = await Promise.all([page.waitForEvent('download'), page.click(selector)]);
  const name = download.suggestedFilename();
  const path = join(dir, name);
  await download.saveAs(path);
  return { name, path };
}

/** The parts of a report's HTML: its embedded data, its script and its CSP. */
function partsOf(html) {
  const start = html.indexOf('id="explorer-data">') + 'id="explorer-data">'.length;
  const data = JSON.parse(html.slice(start, html.indexOf('</script>', start)));
  const script = html.slice(html.indexOf('<script type="module">'));
  const csp = html.match(/Content-Security-Policy" content="([^"]*)"/)[1];
  return { data, script, csp };
}

test('after a run the page shows one matrix and one per-label table (the explorer\'s) and downloads the HTML report, the CLI\'s of the same files, at 1,280 and 390 px', async () => {
  const url = await serve(['--latency-ms', '0']);
  for (const viewport of VIEWPORTS) {
    const where = `${viewport.width} px`;
    const { page } = await newPage(viewport);
    await page.goto(url);
    await ready(page);
    await chooseData(page);
    await page.click('#start');
    await waitForEnd(page);
    await page.waitForFunction(() => document.querySelector('.sx-status')?.textContent.startsWith('completed'));
    const { summary, runId } = await page.evaluate(() => ({ summary: window.__shadow.summary, runId: window.__shadow.runId }));

    // No summary block of the page's own: one matrix, one per-label table.
    const tables = await page.evaluate(() => ({
      old: ['summary', 'summary-text', 'matrix', 'per-label'].filter((id) => document.getElementById(id)),
      matrices: document.querySelectorAll('.sx-matrix').length,
      perLabel: document.querySelectorAll('.sx-perlabel').length,
      all: document.querySelectorAll('table').length,
    }));
    assert.deepEqual(tables.old, [], `${where}: the old block is gone`);
    assert.equal(tables.matrices, 1, where);
    assert.equal(tables.perLabel, 1, where);
    assert.equal(await page.getByRole('table', { name: /confusion matrix/i }).count(), 1, where);
    assert.equal(await page.getByRole('table', { name: /per label/i }).count(), 1, where);
    assert.ok(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth), `${where}: nothing wider than the page`);
    assert.doesNotMatch(await page.textContent('#stats'), /ETA/, `${where}: no time left is promised once the run ended`);

    // The report downloads beside the JSON files, named as the CLI names it.
    const buttons = await page.$$eval('#live .buttons button', (bs) => bs.map((b) => b.textContent));
    assert.deepEqual(buttons, ['Progress JSON', 'Summary JSON', 'Results JSONL', 'HTML report'], where);
    const dir = mkdtempSync(join(tmpdir(), 'shadow-page-report-'));
    const report = await downloadInto(page, '#dl-report', dir);
    assert.equal(report.name, `shadow-mode-batch-report-${runId}.html`, where);

    // It opens from disk as the report, with no network, showing the run.
    const { context, page: opened } = await newPage(viewport);
    const attempted = [];
    await context.route('**/*', (route) => {
      if (route.request().url().startsWith('file:')) return route.continue();
      attempted.push(route.request().url());
      return route.abort();
    });
    await opened.goto(pathToFileURL(report.path).href);
    await opened.waitForSelector('#explorer[data-ready]');
    assert.equal(await opened.textContent('.sx-status'), 'completed', where);
    assert.match(await opened.textContent('.sx-runid'), new RegExp(runId), where);
    const matrix = await opened.$$eval('.sx-matrix tbody tr', (trs) => trs.map((tr) =>
      [...tr.querySelectorAll('td:not(.sx-failcol) button')].map((b) => (b.textContent === '·' ? 0 : Number(b.textContent.replace(/,/g, ''))))));
    assert.deepEqual(matrix, summary.evaluation.confusionMatrix, where);
    assert.match(await opened.textContent('.sx-results caption'), /of 300$/, where);
    assert.match(await opened.textContent('.sx-notes'), /Written by the browser page/, where);
    assert.deepEqual(attempted, [], `${where}: the report made no network request`);
    assert.deepEqual(opened.errors, [], where);

    // The CLI's report of the page's own files: the same script, policy and data
    // (but where it finds the thumbnails, and the note that says so).
    const files = [];
    for (const b of ['#dl-summary', '#dl-results']) files.push(await downloadInto(page, b, dir));
    const cliReport = join(dir, 'cli.html');
    const r = spawnSync(BIN, ['report', files[0].path, '--out', cliReport], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const fromPage = partsOf(readFileSync(report.path, 'utf8'));
    const fromCli = partsOf(readFileSync(cliReport, 'utf8'));
    assert.equal(fromPage.script, fromCli.script, where);
    assert.equal(fromPage.csp, fromCli.csp, where);
    const comparable = ({ thumbnails, notes, ...rest }) => rest;
    assert.deepEqual(comparable(fromPage.data), comparable(fromCli.data), where);
    assert.deepEqual(fromPage.data.thumbnails, { base: '', embedded: {} }, where);
    assert.deepEqual(page.errors, [], where);
    await context.close();
    await page.context().close();
  }
});

const retriesShown = async (page) => {
  const text = await page.textContent('#stats');
  const m = text.match(/retries (\d+)(?: \((\d+) this session\))?/);
  assert.ok(m, text);
  return { total: Number(m[1]), session: m[2] === undefined ? Number(m[1]) : Number(m[2]), text };
};

test('after a reload and resume the live line counts the retries (and 429s) of every session of the run', async () => {
  const url = await serve(['--latency-ms', '150', '--error-rate', '0.3']);
  const { page } = await newPage({ width: 1280, height: 900 });
  await page.goto(url);
  await ready(page);
  await chooseData(page);
  await page.click('#start');
  await page.waitForFunction(() => /retries ([3-9]|\d\d)/.test(document.getElementById('stats').textContent), null, { timeout: 30_000 });
  const before = await retriesShown(page);
  // Kept for a resume (the page writes them at most a second after they change).
  await page.waitForFunction((n) => (window.__shadow.talliesSaved?.retries ?? -1) >= n, before.total, { timeout: 10_000 });
  const stored = await page.evaluate(async () => window.__shadow.store.tallies(window.__shadow.runId));
  assert.ok(stored.retries >= before.total, `kept in IndexedDB: ${JSON.stringify(stored)}`);
  await page.reload();
  await ready(page);
  await chooseData(page, { csv: null });
  await page.getByRole('button', { name: 'Resume it', exact: true }).first().click();
  await page.waitForFunction(() => window.__shadow.runner && window.__shadow.run && !document.querySelector('#status[data-final]'));
  const resumed = await retriesShown(page);
  assert.ok(resumed.total >= before.total, `after the resume: ${resumed.text} (before the reload: ${before.text})`);
  assert.ok(resumed.session < resumed.total, `this session's share is said: ${resumed.text}`);
  assert.match(resumed.text, /retries \d+ \(\d+ this session\)/);
  await waitForEnd(page);
  const end = await retriesShown(page);
  assert.ok(end.total >= before.total, end.text);
  assert.ok(end.total > end.session, `the end still counts the earlier session: ${end.text}`);
  assert.deepEqual(page.errors, []);
  await page.context().close();
});
