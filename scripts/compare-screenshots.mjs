// The compare view for docs/ (compare-view.png, 1,280 px; compare-view-phone.png,
// 390 px): two runs of the built-in mock over the example CSV (80% and 95%
// accurate, other seeds), `shadow-batch compare` of them, its HTML opened with the
// rows filtered to "only B right".
//
//   cargo build -p shadow-native && node scripts/compare-screenshots.mjs [OUT_DIR]
//
// OUT_DIR defaults to docs/; the CSV is $SHADOW_CSV (default
// training-data/labels.csv). Uses the CLI under $CARGO_TARGET_DIR (or target/),
// Debian's chromium and web/node_modules' playwright-core (cd web && npm ci).

import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { createRequire } from 'node:module';

const ROOT = resolve(import.meta.dirname, '..');
const require = createRequire(join(ROOT, 'web/package.json'));
const { chromium } = require('playwright-core');
const BIN = process.env.SHADOW_BATCH_BIN || join(resolve(ROOT, process.env.CARGO_TARGET_DIR || 'target'), 'debug/shadow-batch');
const OUT = resolve(process.argv[2] || join(ROOT, 'docs'));
const CSV = resolve(process.env.SHADOW_CSV || join(ROOT, 'training-data/labels.csv'));

const dir = mkdtempSync(join(tmpdir(), 'shadow-compare-shots-'));
const run = (name, accuracy, seed) => {
  const out = join(dir, name);
  const r = spawnSync(BIN, [CSV, '--out-dir', out, '--mock-accuracy', String(accuracy), '--seed', String(seed), '--mock-latency-ms', '20'],
    { encoding: 'utf8', env: { ...process.env, OPENAI_API_KEY: '' } });
  if (r.status !== 0) throw new Error(r.stderr);
  return join(out, readdirSync(out).find((n) => n.endsWith('.jsonl')));
};
const a = run('a', 0.8, 1);
const b = run('b', 0.95, 2);
const cmp = spawnSync(BIN, ['compare', a, b, '--out-dir', dir], { encoding: 'utf8' });
if (cmp.status !== 0) throw new Error(cmp.stderr);
const html = join(dir, readdirSync(dir).find((n) => n.endsWith('.html')));

const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', args: ['--no-sandbox', '--disable-gpu'] });
// The top of the view down to the first rows of the table (clipped: the whole
// table would make a picture of several screens).
for (const [name, viewport, height] of [['compare-view.png', { width: 1280, height: 900 }, 1900], ['compare-view-phone.png', { width: 390, height: 844 }, 2600]]) {
  const page = await browser.newPage({ viewport });
  await page.route('**/*', (r) => (r.request().url().startsWith('file:') ? r.continue() : r.abort()));
  await page.goto(pathToFileURL(html).href);
  await page.waitForSelector('#explorer[data-ready]');
  await page.selectOption('select[name=show]', 'onlyBRight');
  await page.setViewportSize({ width: viewport.width, height });
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.waitForFunction(() => [...document.querySelectorAll('.sx-cmp-results img')]
    .filter((i) => i.getBoundingClientRect().top < innerHeight).every((i) => i.complete));
  await page.screenshot({ path: join(OUT, name) });
  await page.close();
}
await browser.close();
console.log(`compare view screenshots in ${OUT} (from ${html})`);
