// The page in headless Chromium against `shadow-batch web` (page + mock endpoint on
// one origin): the same CSV, mock and seed give the same batch reports and counts as
// the native CLI; hostile labels stay text; a bad CSV gets a readable message; a
// reload mid-run loses no finished result; the settings form shows the core's
// defaults; downloads carry the CLI's file names.
//
// The CLI binary is $SHADOW_BATCH_BIN, else target/debug/shadow-batch under
// $CARGO_TARGET_DIR (relative to the repository root) or the repository's target/.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { BIN, CSV, IMAGES, launch, openPage, serve, shutdown } from './harness.mjs';

async function runToEnd(page, timeout = 90_000) {
  await page.click('#start');
  await page.waitForSelector('#status[data-final]', { timeout });
  return page.evaluate(() => ({
    summary: window.__shadow.summary,
    lines: window.__shadow.lines,
    reportsShown: [...document.querySelectorAll('pre.report')].map((p) => p.textContent),
  }));
}

const countsOf = (reports) => reports.map((r) => [r.batchNumber, r.processed, r.successful, r.failed, r.batchSuccessful, r.batchFailed, r.agreements]);

before(launch);
after(shutdown);

test('the page gives the same reports and counts as the CLI for the same CSV, mock and seed', async () => {
  const out = mkdtempSync(join(tmpdir(), 'shadow-cli-'));
  const cli = spawnSync(BIN, [CSV, '--out-dir', out, '--seed', '42', '--mock-latency-ms', '20'], { encoding: 'utf8', env: { ...process.env, OPENAI_API_KEY: '' } });
  assert.equal(cli.status, 0, cli.stderr);
  const cliFiles = readdirSync(out);
  const summaryFile = cliFiles.find((f) => /^shadow-mode-batch-\d.*\.json$/.test(f));
  const native = JSON.parse(readFileSync(join(out, summaryFile), 'utf8'));
  const cliRunId = summaryFile.slice('shadow-mode-batch-'.length, -'.json'.length);

  const url = await serve(['--latency-ms', '20']);
  const page = await openPage(url);
  await page.setInputFiles('#csv', CSV);
  await page.setInputFiles('#images', IMAGES);
  const { summary, lines, reportsShown } = await runToEnd(page);

  assert.equal(summary.status, 'completed');
  assert.equal(summary.statistics.total, 300);
  assert.equal(summary.statistics.successful, native.statistics.successful);
  assert.equal(summary.statistics.failed, native.statistics.failed);
  assert.equal(summary.evaluation.agreements, native.evaluation.agreements);
  assert.deepEqual(summary.evaluation.confusionMatrix, native.evaluation.confusionMatrix);
  assert.deepEqual(countsOf(summary.allReports), countsOf(native.allReports));
  // Both hosts ran with the product's defaults (the page's come from its form), and
  // asked the mock for its model by the same name.
  const settingsOf = ({ runId, csvPath, provider: { baseUrl, ...provider }, ...rest }) => ({ ...rest, provider });
  assert.deepEqual(settingsOf(summary.config), settingsOf(native.config));
  assert.equal(lines.length, 300);
  assert.equal(new Set(lines.map((l) => JSON.parse(l).row)).size, 300);
  // The page shows the same report text as the console.
  const first = reportsShown.find((t) => t.includes('BATCH 1/6'));
  assert.ok(first.includes('📊 BATCH 1/6 COMPLETE'), first);
  assert.ok(first.includes('Batch Range:      1 - 50 (50 images)'), first);
  // The run's figures are the explorer's (the page has no summary block of its own).
  await page.waitForFunction(() => document.querySelector('.sx-status')?.textContent === 'completed');
  assert.equal(await page.textContent('.sx-stat.sx-main .sx-stat-value'), `${(summary.evaluation.agreementRate * 100).toFixed(1)}%`);
  assert.deepEqual(page.errors || [], []);

  // The downloads are named as the CLI names its files, with the page's run id.
  const runId = await page.evaluate(() => window.__shadow.runId);
  assert.match(runId, /^\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d-\d{3}Z$/);
  const downloads = {};
  for (const button of ['#dl-progress', '#dl-summary', '#dl-results']) {
    const [download] = await Promise.all([page.waitForEvent('download'), page.click(button)]);
    downloads[button] = { name: download.suggestedFilename(), text: readFileSync(await download.path(), 'utf8') };
  }
  const names = Object.values(downloads).map((d) => d.name);
  assert.deepEqual(names, [
    `shadow-mode-batch-progress-${runId}.json`, `shadow-mode-batch-${runId}.json`, `shadow-mode-batch-results-${runId}.jsonl`,
  ]);
  for (const name of names) assert.ok(cliFiles.includes(name.replace(runId, cliRunId)), `${name} vs ${cliFiles}`);
  assert.equal(JSON.parse(downloads['#dl-progress'].text).batchNumber, 6);
  assert.deepEqual(JSON.parse(downloads['#dl-summary'].text).statistics, summary.statistics);
  assert.equal(downloads['#dl-results'].text.split('\n').filter(Boolean).length, 300);

});

test('the settings form starts from the core\'s defaults; the page\'s HTML holds none', async () => {
  const url = await serve([]);
  const page = await openPage(url);
  const { fields, checked, expected, limits } = await page.evaluate(async () => {
    const { defaultConfig, settingBounds, mockModel } = await import('./pkg/shadow_wasm.js');
    const d = defaultConfig();
    const b = settingBounds();
    const limits = {
      want: {
        'batch-size': b.batchSize, delay: b.delayMs, retries: b.maxRetries, concurrency: b.concurrency,
        timeout: { min: b.requestTimeoutMs.min / 1000, max: b.requestTimeoutMs.max / 1000 }, rpm: b.rpm, tpm: b.tpm,
      },
      got: {},
    };
    for (const id of Object.keys(limits.want)) {
      const input = document.getElementById(id);
      limits.got[id] = { min: Number(input.min), max: Number(input.max) };
    }
    // The mock is chosen: the Model field shows the mock's model (the core's
    // default model comes back with the OpenAI-compatible endpoint). No
    // requests-per-minute, tokens-per-minute or concurrency cap by default (the
    // in-flight limit is found from the pace): those fields are empty.
    const expected = {
      'batch-size': d.batchSize, delay: d.delayMs, retries: d.maxRetries,
      timeout: d.requestTimeoutMs / 1000, seed: d.seed, model: mockModel(), 'base-url': d.provider.baseUrl,
    };
    for (const cap of ['rpm', 'tpm', 'concurrency']) {
      if (d[cap] !== null) throw new Error(`defaultConfig() has a ${cap} cap: ${d[cap]}`);
    }
    // No sample and no stop by default (every row, in file order): those fields are empty.
    for (const unset of ['sample', 'untilInterval']) {
      if (d[unset] !== undefined && d[unset] !== null) throw new Error(`defaultConfig() has a ${unset}: ${d[unset]}`);
    }
    const inputs = document.querySelectorAll('#setup input:not([type=file]):not([type=radio]):not([type=password]):not([type=checkbox])');
    const boxes = document.querySelectorAll('#setup input[type=checkbox]');
    return {
      fields: Object.fromEntries([...inputs].map((i) => [i.id, i.value])),
      checked: Object.fromEntries([...boxes].map((i) => [i.id, i.checked])),
      expected,
      limits,
    };
  });
  // The form's limits are the core's bounds (RunConfig::validate refuses outside them).
  assert.deepEqual(limits.got, limits.want);
  assert.equal(limits.want.concurrency.max, 1024);
  for (const [id, v] of Object.entries(expected)) assert.ok(v !== undefined && v !== null && v !== '', `defaultConfig() has no ${id}`);
  // Every field of the form, and no other, shows the core's default.
  // (The Azure fields, hidden, start as the core's Azure default: no deployment, no
  // API version.)
  assert.deepEqual(fields, {
    ...Object.fromEntries(Object.entries(expected).map(([id, v]) => [id, String(v)])), rpm: '', tpm: '', concurrency: '',
    deployment: '', 'api-version': '', 'sample-size': '', 'until-interval': '',
  });
  // No sample by label by default (the core's RunConfig has no sample).
  assert.deepEqual(checked, { stratify: false });

  const html = await (await fetch(`${url}/`)).text();
  const preset = await page.evaluate((text) => {
    const doc = new DOMParser().parseFromString(text, 'text/html');
    return [...doc.querySelectorAll('#setup input[value]:not([type=radio])')].map((i) => i.outerHTML);
  }, html);
  assert.deepEqual(preset, [], 'index.html presets a setting the core owns');
  assert.deepEqual(page.errors || [], []);
});

test('labels from the CSV are shown as text, never as HTML', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'shadow-xss-'));
  const hostile = '<img src=x onerror=alert(1)>';
  const rows = ['image,label', `https://example.test/a.png,"${hostile}"`, 'https://example.test/b.png,cat', 'https://example.test/c.png,cat'];
  writeFileSync(join(dir, 'labels.csv'), rows.join('\n') + '\n');
  const url = await serve(['--latency-ms', '0']);
  const page = await openPage(url);
  await page.setInputFiles('#csv', join(dir, 'labels.csv'));
  const { summary } = await runToEnd(page);
  assert.equal(summary.statistics.total, 3);
  await page.waitForSelector('.sx-perlabel');
  const cells = await page.$$eval('.sx-perlabel th, .sx-perlabel td', (cells) => cells.map((c) => c.textContent));
  assert.ok(cells.includes(hostile), cells.join(' | '));
  assert.equal(await page.$$eval('img', (imgs) => imgs.length), 0);
  assert.deepEqual(page.dialogs, []);
});

test('a CSV without an image column gets a readable message', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'shadow-bad-'));
  writeFileSync(join(dir, 'bad.csv'), 'foo,bar\n1,2\n');
  const url = await serve(['--latency-ms', '0']);
  const page = await openPage(url);
  await page.setInputFiles('#csv', join(dir, 'bad.csv'));
  await page.click('#start');
  await page.waitForSelector('#error:not([hidden])');
  const text = await page.textContent('#error');
  assert.match(text, /bad\.csv/);
  assert.match(text, /image column/i);
  assert.match(text, /foo/);
});

test('a reload mid-run loses no finished result and the run resumes to the same end', async () => {
  const url = await serve(['--latency-ms', '250']);
  const page = await openPage(url);
  await page.setInputFiles('#csv', CSV);
  await page.setInputFiles('#images', IMAGES);
  await page.click('#start');
  await page.waitForFunction(() => window.__shadow.lines.length >= 40, null, { timeout: 30_000 });
  await page.reload();
  await page.waitForSelector('#resume-offer:not([hidden])');
  const saved = await page.textContent('#resume-offer');
  const kept = Number(saved.match(/has (\d+) finished/)[1]);
  assert.ok(kept >= 40, saved);
  await page.setInputFiles('#images', IMAGES);
  await page.getByRole('button', { name: 'Resume it', exact: true }).click();
  await page.waitForSelector('#status[data-final]', { timeout: 90_000 });
  const { summary, lines } = await page.evaluate(() => ({ summary: window.__shadow.summary, lines: window.__shadow.lines }));
  assert.equal(summary.status, 'completed');
  assert.equal(summary.statistics.processed, 300);
  assert.ok(summary.statistics.resumedItems >= kept);
  const rows = lines.map((l) => JSON.parse(l).row);
  assert.equal(rows.length, 300, 'every row once in the results');
  assert.equal(new Set(rows).size, 300);
});
