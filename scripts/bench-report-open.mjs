// Benchmark: how long an HTML report already written takes to open in headless
// Chromium from disk, network blocked (BENCHMARKS.md, scenario 9). Prints figures;
// asserts nothing about time.
//
//   node scripts/bench-report-open.mjs REPORT.html [RUNS]
//
// Each of RUNS (default 3) fresh pages: time from navigation start to the explorer
// drawn (its `explorer-ready` performance mark: JSON parsed, headline, matrix,
// per-label table, first page of rows, charts) and the JS heap after drawing;
// the medians are printed with the file's size. Uses Debian's chromium (or
// $CHROMIUM) and web/node_modules' playwright-core.

import { statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const ROOT = resolve(import.meta.dirname, '..');
const { chromium } = createRequire(join(ROOT, 'web/package.json'))('playwright-core');
const report = resolve(process.argv[2] || '');
const RUNS = Number(process.argv[3] || 3);
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--enable-precise-memory-info'],
});
const ready = [];
const heap = [];
let rows = 0;
let note = '';
for (let i = 0; i < RUNS; i++) {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  await page.route('**/*', (r) => (r.request().url().startsWith('file:') ? r.continue() : r.abort()));
  await page.goto(pathToFileURL(report).href, { timeout: 300_000 });
  await page.waitForSelector('#explorer[data-ready]', { timeout: 300_000 });
  ready.push(await page.evaluate(() => performance.getEntriesByName('explorer-ready')[0].startTime));
  heap.push(await page.evaluate(() => performance.memory.usedJSHeapSize / 2 ** 20));
  rows = await page.evaluate(() => JSON.parse(document.getElementById('explorer-data').textContent).items.row.length);
  note = (await page.$eval('.sx-sample', (e) => e.textContent).catch(() => '')) || '(no sample note)';
  await page.close();
}
await browser.close();
console.log(`${report}`);
console.log(`| figure | measured |\n|---|---|`);
console.log(`| report size | ${(statSync(report).size / 2 ** 20).toFixed(1)} MiB, ${rows.toLocaleString('en-US')} rows embedded |`);
console.log(`| navigation to explorer drawn (median of ${RUNS}: ${ready.map((t) => Math.round(t)).join(', ')} ms) | ${Math.round(median(ready))} ms |`);
console.log(`| JS heap after drawing | ${median(heap).toFixed(0)} MiB |`);
console.log(`\nnote at the top: ${note}`);
