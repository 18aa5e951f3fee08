// The explorer's confidence section in the CLI's HTML report, opened from disk
// with the network blocked: the reliability diagram stands on the summary's bins,
// the threshold slider counts the rows on each side as the results file does and
// lists them in the table, and the labels to re-check show their images, labels
// and confidences and download as a CSV for relabelling.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

import { BIN, CSV, ROOT, launch, newPage, shutdown } from './harness.mjs';

before(launch);
after(shutdown);

function run(out, extra) {
  const r = spawnSync(BIN, [CSV, '--out-dir', out, '--seed', '42', '--mock-latency-ms', '5', ...extra],
    { encoding: 'utf8', env: { ...process.env, OPENAI_API_KEY: '' } });
  assert.ok(r.status === 0 || r.status === 1, `exit ${r.status}: ${r.stderr}`);
  const names = readdirSync(out);
  const pick = (re) => join(out, names.find((n) => re.test(n)));
  return {
    summary: JSON.parse(readFileSync(pick(/^shadow-mode-batch-\d.*\.json$/), 'utf8')),
    results: readFileSync(pick(/^shadow-mode-batch-results-.*\.jsonl$/), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l)).filter((r) => r.row !== undefined),
    report: pick(/^shadow-mode-batch-report-.*\.html$/),
  };
}

async function openReport(path, viewport) {
  const { context, page } = await newPage(viewport);
  const attempted = [];
  await context.route('**/*', (route) => {
    const url = route.request().url();
    if (url.startsWith('file:')) return route.continue();
    attempted.push(url);
    return route.abort();
  });
  await page.goto(pathToFileURL(path).href);
  await page.waitForSelector('#explorer[data-ready]');
  return { page, attempted };
}

test('report: reliability diagram, threshold slider with the rows on each side, labels to re-check with a CSV, at 1,280 and 390 px', async () => {
  const out = mkdtempSync(join(tmpdir(), 'shadow-confidence-'));
  const { summary, results, report } = run(out, ['--target-agreement', '0.95', '--mock-error-rate', '0', '--mock-overconfidence', '0.3']);
  const c = summary.confidence;
  assert.equal(c.scoredRows, 300);
  for (const [width, height] of [[1280, 900], [390, 844]]) {
    const where = `at ${width} px`;
    const { page, attempted } = await openReport(report, { width, height });
    const section = page.locator('.sx-confidence-section');
    await section.waitFor();
    // The diagram: one bar per filled bin, their counts the summary's.
    const bars = await page.$$eval('.sx-reliability .sx-rel-bar', (rs) => rs.map((r) => Number(r.dataset.rows)));
    assert.deepEqual(bars, c.bins.filter((b) => b.rows > 0).map((b) => b.rows), where);
    assert.equal(bars.reduce((a, b) => a + b, 0), 300, where);
    // The target sentence is the summary's.
    const t = c.atTarget;
    assert.equal(await page.textContent('.sx-target'),
      `At confidence ≥ ${t.threshold.toFixed(2)} the model agrees with the labels on ${(t.agreement * 100).toFixed(1)}% of rows (${(t.interval.low * 100).toFixed(1)}%–${(t.interval.high * 100).toFixed(1)}%) and takes ${(t.coverage * 100).toFixed(0)}% of them (target 95.0%).`, where);
    // The slider: the rows on each side, counted as the results file says.
    await page.$eval('.sx-threshold input[name=threshold]', (e) => { e.value = '0.9'; e.dispatchEvent(new Event('input')); });
    const above = results.filter((r) => r.status === 'success' && r.confidence >= 0.9);
    const agreeing = above.filter((r) => r.agreement).length;
    const words = await page.textContent('.sx-threshold-words');
    assert.equal(words, `At confidence ≥ 0.90 the model takes ${above.length} of 300 scored rows (${(above.length / 3).toFixed(0)}%), agreeing with the labels on ${(agreeing / above.length * 100).toFixed(1)}% of them; ${300 - above.length} are left below.`, where);
    await page.click('.sx-threshold-below');
    assert.match(await page.textContent('.sx-results caption'), new RegExp(`of ${300 - above.length} \\(filtered from 300\\)`), where);
    const listed = await page.$$eval('.sx-results tbody tr[data-row]', (trs) => trs.map((tr) => Number(tr.dataset.row)));
    const below = new Set(results.filter((r) => r.confidence < 0.9).map((r) => r.row));
    assert.ok(listed.length > 0 && listed.every((row) => below.has(row)), `${where}: ${listed}`);
    // The labels to re-check: the summary's rows, least likely label first, with images.
    const found = c.labelErrors;
    assert.ok(found.flagged > 0, 'the mock run has labels to re-check');
    const cards = await page.$$eval('.sx-recheck-card', (cs) => cs.map((x) => Number(x.dataset.row)));
    assert.deepEqual(cards, found.issues.slice(0, 60).map((i) => i.row), where);
    const first = found.issues[0];
    const text = await page.textContent('.sx-recheck-card');
    assert.ok(text.includes(`labelled ${c.labels[first.given]}`) && text.includes(`model: ${c.labels[first.predicted]} at ${first.confidence.toFixed(3)}`), text);
    await page.locator('.sx-recheck-img').first().scrollIntoViewIfNeeded();
    await page.waitForFunction(() => [...document.querySelectorAll('.sx-recheck-img')].slice(0, 3).every((i) => i.complete && i.naturalWidth > 0));
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('.sx-recheck-export')]);
    const csv = readFileSync(await download.path(), 'utf8').split('\r\n').filter(Boolean);
    assert.equal(csv[0], 'row,line,image,label,modelLabel,confidence,labelProbability,likelyLabel,newLabel', where);
    assert.equal(csv.length, found.issues.length + 1, where);
    const byRow = new Map(results.map((r) => [r.row, r]));
    assert.equal(csv[1], [first.row, byRow.get(first.row).line, byRow.get(first.row).image, c.labels[first.given], c.labels[first.predicted], first.confidence, first.givenProbability, c.labels[first.likely], ''].join(','), where);
    if (width === 1280) {
      await section.scrollIntoViewIfNeeded();
      await section.screenshot({ path: join(ROOT, 'docs/report-confidence.png') });
    } else {
      // The section's top at phone width (the cards go on in one column).
      await page.evaluate(() => document.querySelector('.sx-confidence-section').scrollIntoView());
      await page.screenshot({ path: join(tmpdir(), 'report-confidence-phone.png') });
      // Nothing wider than the screen.
      assert.ok(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth), where);
    }
    assert.deepEqual(attempted, [], 'the report made no network request');
    assert.deepEqual(page.errors, [], where);
  }
});

test('report: in a sampled run the labels to re-check are named by their CSV line, not their place in the sample', async () => {
  const out = mkdtempSync(join(tmpdir(), 'shadow-recheck-sample-'));
  const { summary, results, report } = run(out, ['--sample', '120', '--mock-error-rate', '0', '--mock-overconfidence', '0.3']);
  const found = summary.confidence.labelErrors;
  assert.ok(found.flagged > 0, 'the mock run has labels to re-check');
  const byRow = new Map(results.map((r) => [r.row, r]));
  for (const issue of found.issues) assert.equal(issue.line, byRow.get(issue.row).line);
  // The sample moved the rows: a row's number is not its line.
  assert.ok(found.issues.some((i) => i.line !== i.row + 2), JSON.stringify(found.issues));
  const { page } = await openReport(report, { width: 1280, height: 900 });
  await page.locator('.sx-confidence-section').waitFor();
  const named = await page.$$eval('.sx-recheck-card .sx-recheck-line', (ds) => ds.map((d) => d.textContent));
  assert.deepEqual(named, found.issues.slice(0, 60).map((i) => `CSV line ${i.line}`));
  const [download] = await Promise.all([page.waitForEvent('download'), page.click('.sx-recheck-export')]);
  const csv = readFileSync(await download.path(), 'utf8').split('\r\n').filter(Boolean);
  assert.deepEqual(csv.slice(1).map((l) => Number(l.split(',')[1])), found.issues.map((i) => i.line));
  assert.deepEqual(page.errors, []);
});

test('report: a run without confidences has no confidence section', async () => {
  const out = mkdtempSync(join(tmpdir(), 'shadow-noconf-'));
  const { summary, report } = run(out, ['--no-confidence']);
  assert.equal(summary.confidence, undefined);
  const { page } = await openReport(report, { width: 1280, height: 900 });
  assert.equal(await page.$('.sx-confidence-section'), null);
  assert.deepEqual(page.errors, []);
});
