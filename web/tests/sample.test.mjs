// Issue 23 on the page and in the explorer: the Data box's Sample and Stop fields
// (`--sample`, `--until-interval`), the sample the page draws being the CLI's
// (same CSV, seed and size: the same rows, in the same order), and the explorer's
// banner ("every figure is estimated from n of N rows", the whole CSV's interval,
// the stop's anytime-valid interval beside Wilson's) on the page and in the HTML
// report the CLI writes.
//
// The CLI binary is $SHADOW_BATCH_BIN, else target/debug/shadow-batch under
// $CARGO_TARGET_DIR (relative to the repository root) or the repository's target/.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

import {
  BIN, CSV, launch, newPage, openPage, serve, shutdown, chooseData, fill, fieldProblem, results, waitForEnd,
} from './harness.mjs';

before(launch);
after(shutdown);

/** A CLI run of the shipped CSV against its built-in mock with `extra` flags; its files. */
function cliRun(extra) {
  const dir = mkdtempSync(join(tmpdir(), 'shadow-sample-'));
  const r = spawnSync(BIN, [CSV, '--mock-latency-ms', '0', '--mock-error-rate', '0', '--out-dir', dir, ...extra],
    { encoding: 'utf8', env: { ...process.env, OPENAI_API_KEY: '' } });
  assert.ok(r.status === 0 || r.status === 1, r.stderr);
  const files = readdirSync(dir);
  const pick = (re) => join(dir, files.find((f) => re.test(f)));
  return {
    lines: readFileSync(pick(/^shadow-mode-batch-results-.*\.jsonl$/), 'utf8').split('\n').filter(Boolean),
    summary: JSON.parse(readFileSync(pick(/^shadow-mode-batch-\d.*\.json$/), 'utf8')),
    report: pick(/^shadow-mode-batch-report-.*\.html$/),
  };
}

/** What a sample is made of: each result's row (its place in the sample), CSV line and image. */
const drawn = (lines) => lines.map((l) => JSON.parse(l))
  .filter((r) => r.row !== undefined)
  .map((r) => [r.row, r.line, r.image])
  .sort((a, b) => a[0] - b[0]);

/** "85.3–94.0%", as the explorer writes an interval. */
const interval = (i) => `${(i.low * 100).toFixed(1)}–${(i.high * 100).toFixed(1)}%`;

/** The explorer's banner and the headline's "estimated from" tags. */
const banner = (page) => page.evaluate(() => ({
  text: document.querySelector('.sx-sampling')?.textContent ?? null,
  tags: [...document.querySelectorAll('.sx-stat-est')].map((e) => e.textContent),
}));

test('a sampled page run draws the CLI\'s rows for the same CSV, seed and --sample, and its explorer says every figure is estimated from n of N rows', async () => {
  const url = await serve(['--latency-ms', '0']);
  const page = await openPage(url);
  await chooseData(page);
  await fill(page, { 'sample-size': '40', seed: 7, 'batch-size': 10 });
  await page.dispatchEvent('#sample-size', 'change');
  await page.waitForFunction(() => document.querySelector('#sample-note').textContent.includes('40 of 300 rows, seed 7'));
  // The Data box's check and estimate are of the sample's 40 rows.
  await page.waitForFunction(() => document.querySelector('#data-info').textContent.startsWith('40 rows sampled of 300'));
  await page.waitForFunction(() => /\b40\b/.test(document.querySelector('#data-estimate').textContent));

  await page.click('#start');
  await waitForEnd(page);
  const { summary, lines } = await results(page);
  assert.equal(lines.length, 40);
  assert.deepEqual({ rows: summary.sample.rows, csvRows: summary.sample.csvRows, seed: summary.sample.seed },
    { rows: 40, csvRows: 300, seed: 7 });

  // The CLI's sample of the same CSV with the same seed and size: the same rows.
  const cli = cliRun(['--sample', '40', '--seed', '7']);
  assert.deepEqual(drawn(lines), drawn(cli.lines));
  assert.equal(cli.summary.sample.seed, 7);

  // The explorer: one banner, and a tag under each rate.
  await page.waitForFunction(() => document.querySelector('.sx-status')?.textContent.startsWith('completed'));
  const { text, tags } = await banner(page);
  const s = summary.sample;
  assert.ok(text.includes(`Every figure is estimated from ${s.compared} of 300 rows`), text);
  assert.ok(text.includes('seeded random sample of 40 rows (seed 7)'), text);
  assert.ok(text.includes(`Agreement over the whole CSV: ${interval(s.agreementIntervalForCsv)}`), text);
  assert.ok(text.includes('finite-population correction'), text);
  assert.ok(!text.includes('Stopped'), text);
  assert.ok(tags.filter((t) => t === `estimated from ${s.compared} of 300 rows`).length >= 3, JSON.stringify(tags));
  assert.deepEqual(page.errors, []);
});

test('a stratified page run draws the CLI\'s --sample --stratify rows, and refuses a stop with it in the CLI\'s words', async () => {
  const url = await serve(['--latency-ms', '0']);
  const page = await openPage(url);
  await chooseData(page);
  await fill(page, { 'sample-size': '40', seed: 7, 'batch-size': 10 });
  await page.check('#stratify');
  await page.waitForFunction(() => document.querySelector('#sample-note').textContent.includes('stratified by label: 40 of 300 rows, seed 7'));
  assert.ok((await page.textContent('#sample-note')).includes('--sample 40 --stratify'));

  // With a stop: refused next to the Stop field, as the CLI refuses it.
  await fill(page, { 'until-interval': '0.1' });
  await page.click('#start');
  const problem = await fieldProblem(page, 'until-interval');
  assert.ok(problem.invalid, JSON.stringify(problem));
  const refused = spawnSync(BIN, [CSV, '--sample', '40', '--stratify', '--until-interval', '0.1'], { encoding: 'utf8' });
  assert.equal(refused.status, 2);
  assert.ok(refused.stderr.includes(problem.text.replace(/^Stop: /, '')), `${problem.text}\n${refused.stderr}`);
  assert.equal(await page.evaluate(() => window.__shadow.lines.length), 0);

  await fill(page, { 'until-interval': '' });
  await page.click('#start');
  await waitForEnd(page);
  const { summary, lines } = await results(page);
  assert.equal(lines.length, 40);
  assert.equal(summary.sample.stratified, true);
  const cli = cliRun(['--sample', '40', '--stratify', '--seed', '7']);
  assert.deepEqual(drawn(lines), drawn(cli.lines));
  assert.equal(cli.summary.sample.stratified, true);

  await page.waitForFunction(() => document.querySelector('.sx-status')?.textContent.startsWith('completed'));
  const { text } = await banner(page);
  assert.ok(text.includes('stratified by label'), text);
  assert.ok(text.includes(`Agreement reweighted to the CSV's labels: ${(summary.sample.stratifiedAgreement * 100).toFixed(2)}%`), text);
  assert.deepEqual(page.errors, []);
});

test('the Sample and Stop fields refuse what the CLI refuses, in its words, next to the field', async () => {
  const url = await serve(['--latency-ms', '0']);
  const page = await openPage(url);
  await chooseData(page);
  await fill(page, { 'sample-size': '500' });
  await page.click('#start');
  let problem = await fieldProblem(page, 'sample-size');
  assert.ok(problem.invalid, JSON.stringify(problem));
  assert.equal(problem.text, 'Sample: --sample 500: the CSV has only 300 rows');

  await fill(page, { 'sample-size': '0', 'until-interval': '' });
  await page.click('#start');
  problem = await fieldProblem(page, 'sample-size');
  assert.match(problem.text, /^Sample: a sample of 0 rows: give at least 1 row, or a share in \(0, 1\]$/);

  await fill(page, { 'sample-size': '', 'until-interval': '0.7' });
  await page.click('#start');
  problem = await fieldProblem(page, 'until-interval');
  assert.ok(problem.invalid);
  assert.equal(problem.text, 'Stop: `0.7` is not a half-width between 0 and 0.5 (e.g. 0.01 for ±1 point)');
  // The CLI says the same of the same value.
  const cli = spawnSync(BIN, [CSV, '--until-interval', '0.7'], { encoding: 'utf8' });
  assert.equal(cli.status, 2);
  assert.ok(cli.stderr.includes('`0.7` is not a half-width between 0 and 0.5 (e.g. 0.01 for ±1 point)'), cli.stderr);
  // Nothing started.
  assert.equal(await page.evaluate(() => window.__shadow.lines.length), 0);
});

test('an until-interval page run stops early, says "precision reached" with both intervals, and offers to go further', async () => {
  const url = await serve(['--latency-ms', '0']);
  const page = await openPage(url);
  await chooseData(page);
  await fill(page, { 'until-interval': '0.1', seed: 3, 'batch-size': 10 });
  await page.dispatchEvent('#until-interval', 'change');
  await page.waitForFunction(() => document.querySelector('#sample-note').textContent.includes('at most ±10.0 points'));
  await page.click('#start');
  const status = await waitForEnd(page);
  const { summary, lines } = await results(page);
  const p = summary.precision;
  assert.equal(summary.status, 'completed');
  assert.equal(p.stopReason, 'precision reached');
  assert.ok(lines.length < 300 && lines.length >= 10, `${lines.length} rows`);
  assert.ok(p.halfWidth <= 0.1, JSON.stringify(p));
  assert.ok(status.includes('precision reached'), status);

  await page.waitForFunction(() => document.querySelector('.sx-status')?.textContent.startsWith('completed'));
  const { text } = await banner(page);
  assert.ok(text.includes(`Every figure is estimated from ${summary.sample.compared} of 300 rows`), text);
  assert.ok(text.includes(`Stopped: precision reached. The agreement's anytime-valid 95% interval is ${interval(p.anytimeInterval)}`), text);
  assert.ok(text.includes(`ordinary Wilson interval of the same rows, ${interval(p.wilsonInterval)}`), text);
  assert.ok(text.includes('can be resumed with a narrower interval'), text);

  // The offer above the form: the run stopped, with rows left to go further.
  await page.waitForSelector('.offer');
  const offer = await page.textContent('.offer');
  assert.ok(offer.includes('stopped: precision reached') && offer.includes('narrow'), offer);
  assert.deepEqual(page.errors, []);
});

test('the HTML report of a CLI sampled run, and of one stopped at a width, shows the banner', async () => {
  const sampled = cliRun(['--sample', '0.2', '--seed', '11']);
  const stopped = cliRun(['--until-interval', '0.1', '--seed', '11', '10']);
  for (const [run, viewport] of [[sampled, { width: 1280, height: 900 }], [stopped, { width: 390, height: 844 }]]) {
    const { page } = await newPage(viewport);
    await page.goto(pathToFileURL(run.report).href);
    await page.waitForSelector('.sx-sampling');
    const { text, tags } = await banner(page);
    const s = run.summary.sample;
    assert.ok(text.includes(`Every figure is estimated from ${s.compared} of 300 rows`), text);
    assert.ok(text.includes(`Agreement over the whole CSV: ${interval(s.agreementIntervalForCsv)}`), text);
    assert.ok(tags.length >= 3, JSON.stringify(tags));
    if (run === stopped) {
      assert.equal(run.summary.precision.stopReason, 'precision reached');
      assert.ok(text.includes(`Stopped: precision reached. The agreement's anytime-valid 95% interval is ${interval(run.summary.precision.anytimeInterval)}`), text);
    } else {
      assert.equal(s.rows, 60);
      assert.ok(!text.includes('Stopped'), text);
    }
    assert.deepEqual(page.errors, []);
  }
});

test('the HTML report of a CLI --stratify run says the sample is stratified and shows the agreement reweighted to the CSV\'s labels', async () => {
  const run = cliRun(['--sample', '0.2', '--stratify', '--seed', '11']);
  const s = run.summary.sample;
  assert.equal(s.stratified, true);
  assert.equal(typeof s.stratifiedAgreement, 'number');
  const { page } = await newPage({ width: 1280, height: 900 });
  await page.goto(pathToFileURL(run.report).href);
  await page.waitForSelector('.sx-sampling');
  const { text } = await banner(page);
  assert.ok(text.includes('stratified by label'), text);
  assert.ok(text.includes(`Agreement reweighted to the CSV's labels: ${(s.stratifiedAgreement * 100).toFixed(2)}%`), text);
  assert.ok(text.includes(`Agreement over the whole CSV: ${interval(s.agreementIntervalForCsv)}`), text);
  assert.deepEqual(page.errors, []);
});

test('a sampled page run cut by a reload resumes the same sample: the CLI\'s rows, each once', async () => {
  const url = await serve(['--latency-ms', '200']);
  const page = await openPage(url);
  await chooseData(page);
  await fill(page, { 'sample-size': '0.2', seed: 5, 'batch-size': 10 });
  await page.click('#start');
  await page.waitForFunction(() => window.__shadow.lines.length >= 15, null, { timeout: 30_000 });
  await page.reload();
  await page.waitForSelector('#resume-offer:not([hidden])');
  await page.setInputFiles('#images', join(CSV, '../images'));
  await page.getByRole('button', { name: 'Resume it', exact: true }).click();
  // The form shows the stored run's sample while it resumes it.
  assert.equal(await page.inputValue('#sample-size'), '0.2');
  await waitForEnd(page);
  const { summary, lines } = await results(page);
  assert.equal(summary.status, 'completed');
  assert.ok(summary.statistics.resumedItems >= 15, JSON.stringify(summary.statistics));
  assert.deepEqual({ rows: summary.sample.rows, seed: summary.sample.seed }, { rows: 60, seed: 5 });
  const cli = cliRun(['--sample', '0.2', '--seed', '5']);
  assert.deepEqual(drawn(lines), drawn(cli.lines));
  assert.deepEqual(page.errors, []);
});
