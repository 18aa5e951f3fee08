// Screenshots of the results explorer for docs/: the CLI's HTML report at desktop
// (1,280 px) and phone (390 px) width (report-desktop.png, report-phone.png); a
// row's view opened in it (report-row.png, report-row-phone.png); the slices of a
// run of the example with a `site` column whose harbour rows the mock answers worse
// (report-slices.png, report-slices-phone.png); and the page after a run, its
// disagreements listed (explorer.png).
//
//   cargo build -p shadow-native && bash web/build.sh && node scripts/explorer-screenshots.mjs [OUT_DIR]
//
// OUT_DIR defaults to docs/; the CSV is $SHADOW_CSV (default training-data/labels.csv). Uses the CLI under $CARGO_TARGET_DIR (or target/),
// Debian's chromium and web/node_modules' playwright-core (cd web && npm ci).

import { spawn, spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { createRequire } from 'node:module';

const ROOT = resolve(import.meta.dirname, '..');
const require = createRequire(join(ROOT, 'web/package.json'));
const { chromium } = require('playwright-core');
const BIN = process.env.SHADOW_BATCH_BIN || join(resolve(ROOT, process.env.CARGO_TARGET_DIR || 'target'), 'debug/shadow-batch');
const OUT = resolve(process.argv[2] || join(ROOT, 'docs'));
const CSV = resolve(process.env.SHADOW_CSV || join(ROOT, 'training-data/labels.csv'));
mkdirSync(OUT, { recursive: true });

// A run with some failures to show: 10% injected 500s and one retry.
const dir = mkdtempSync(join(tmpdir(), 'shadow-shots-'));
const cli = spawnSync(BIN, [CSV, '50', '0', '1', '--out-dir', dir, '--mock-error-rate', '0.1', '--mock-latency-ms', '30'],
  { encoding: 'utf8', env: { ...process.env, OPENAI_API_KEY: '' } });
if (cli.status !== 0 && cli.status !== 1) throw new Error(cli.stderr);
const report = join(dir, readdirSync(dir).find((n) => n.endsWith('.html')));

const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', args: ['--no-sandbox', '--disable-gpu'] });
const loaded = (page) => page.waitForFunction(() => [...document.querySelectorAll('.sx-results img')].filter((i) => i.getBoundingClientRect().top < innerHeight).every((i) => i.complete));

for (const [name, viewport, height] of [['report-desktop.png', { width: 1280, height: 900 }, 1500], ['report-phone.png', { width: 390, height: 844 }, 2400]]) {
  const page = await browser.newPage({ viewport });
  await page.route('**/*', (r) => (r.request().url().startsWith('file:') ? r.continue() : r.abort()));
  await page.goto(pathToFileURL(report).href);
  await page.waitForSelector('#explorer[data-ready]');
  await page.setViewportSize({ width: viewport.width, height });
  await loaded(page);
  await page.screenshot({ path: join(OUT, name) });
  await page.close();
}

// A row's view: the first disagreement of the report, opened from its row.
for (const [name, viewport] of [['report-row.png', { width: 1280, height: 800 }], ['report-row-phone.png', { width: 390, height: 844 }]]) {
  const page = await browser.newPage({ viewport });
  await page.route('**/*', (r) => (r.request().url().startsWith('file:') ? r.continue() : r.abort()));
  await page.goto(pathToFileURL(report).href);
  await page.waitForSelector('#explorer[data-ready]');
  await page.locator('.sx-results tr.sx-disagree').first().scrollIntoViewIfNeeded();
  await page.click('.sx-results tr.sx-disagree td.sx-label');
  await page.waitForFunction(() => document.querySelector('dialog.sx-rowview img')?.complete);
  await page.screenshot({ path: join(OUT, name) });
  await page.close();
}

// Slices: the example's CSV with a `site` column (rows 0-199 north and south in
// turn, 200-299 harbour) and a `camera` column; the mock answers the harbour's
// rows at 0.6 instead of 0.9 (--mock-accuracy-drop-at), as a model might fail on
// one site's images.
// Written to a folder of its own (the images copied beside it), never into the checkout.
const [header, ...rows] = readFileSync(CSV, 'utf8').trim().split(/\r?\n/);
const siteDir = mkdtempSync(join(tmpdir(), 'shadow-shots-sites-'));
cpSync(join(dirname(CSV), 'images'), join(siteDir, 'images'), { recursive: true });
const sited = join(siteDir, 'labels-by-site.csv');
writeFileSync(sited, `${header},site,camera\n${rows.map((r, i) => `${r},${i >= 200 ? 'harbour' : i % 2 ? 'south' : 'north'},${'ABC'[i % 3]}`).join('\n')}\n`);
const siteRun = spawnSync(BIN, [sited, '--out-dir', siteDir, '--mock-latency-ms', '5', '--mock-accuracy-drop-at', '200:0.6'],
  { encoding: 'utf8', env: { ...process.env, OPENAI_API_KEY: '' } });
if (siteRun.status !== 0 && siteRun.status !== 1) throw new Error(siteRun.stderr);
const siteReport = join(siteDir, readdirSync(siteDir).find((n) => n.endsWith('.html')));
for (const [name, viewport] of [['report-slices.png', { width: 1280, height: 900 }], ['report-slices-phone.png', { width: 390, height: 844 }]]) {
  const page = await browser.newPage({ viewport });
  await page.route('**/*', (r) => (r.request().url().startsWith('file:') ? r.continue() : r.abort()));
  await page.goto(pathToFileURL(siteReport).href);
  await page.waitForSelector('.sx-slices');
  await page.locator('.sx-slices-section').screenshot({ path: join(OUT, name) });
  await page.close();
}

// The page: the same CSV run in the browser, then the matrix cell of the most frequent confusion clicked.
const server = spawn(BIN, ['web', '--port', '0', '--truth', CSV, '--latency-ms', '20', '--error-rate', '0.1'], { stdio: ['ignore', 'pipe', 'inherit'] });
const url = await new Promise((res) => { let o = ''; server.stdout.on('data', (d) => { o += d; const m = o.match(/page at (http:\S+)\//); if (m) res(m[1]); }); });
const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
await page.goto(url);
await page.waitForFunction(() => window.__shadow && window.__shadow.explorer);
await page.setInputFiles('#csv', CSV);
await page.setInputFiles('#images', join(dirname(CSV), 'images'));
await page.click('#start');
await page.waitForSelector('#status[data-final]', { timeout: 120_000 });
await page.waitForFunction(() => document.querySelector('.sx-status')?.textContent.startsWith('completed'));
// The results section with the disagreements listed (each row opens its evidence).
await page.check('.sx-filters input[name=disagreements]');
await page.locator('.sx-table-section').scrollIntoViewIfNeeded();
await page.mouse.move(1, 1); // no row under the pointer (a hovered row is shaded)
await loaded(page);
const table = await page.evaluate(() => {
  const r = document.querySelector('.sx-table-section').getBoundingClientRect();
  return { x: r.left + scrollX, y: r.top + scrollY, width: r.width, height: r.height };
});
await page.screenshot({ path: join(OUT, 'explorer.png'), fullPage: true,
  clip: { x: table.x, y: table.y, width: table.width, height: Math.min(table.height, 720) } });
server.kill();
await browser.close();
console.log(`wrote ${OUT}/explorer.png, report-desktop.png, report-phone.png, report-row.png, report-row-phone.png, report-slices.png, report-slices-phone.png (report: ${report})`);
