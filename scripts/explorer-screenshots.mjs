// Screenshots of the results explorer for docs/: the page after a run (a matrix
// cell clicked), and the CLI's HTML report at desktop and phone (390 px) width.
//
//   cargo build -p shadow-native && bash web/build.sh && node scripts/explorer-screenshots.mjs [OUT_DIR]
//
// OUT_DIR defaults to docs/; the CSV is $SHADOW_CSV (default training-data/labels.csv). Uses the CLI under $CARGO_TARGET_DIR (or target/),
// Debian's chromium and web/node_modules' playwright-core (cd web && npm ci).

import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, readdirSync } from 'node:fs';
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
const top = await page.evaluate(() => window.__shadow.summary.evaluation.topConfusions[0]);
const labels = await page.evaluate(() => window.__shadow.summary.evaluation.labels);
await page.click(`.sx-matrix button[data-label="${labels.indexOf(top.label)}"][data-predicted="${labels.indexOf(top.predicted)}"]`);
await loaded(page);
const box = await page.evaluate(() => {
  const r = document.getElementById('explorer-section').getBoundingClientRect();
  return { y: r.top + scrollY, height: r.height };
});
await page.screenshot({ path: join(OUT, 'explorer.png'), fullPage: true, clip: { x: 0, y: box.y, width: 1280, height: Math.min(box.height, 1600) } });
server.kill();
await browser.close();
console.log(`wrote ${OUT}/explorer.png, report-desktop.png, report-phone.png (report: ${report})`);
