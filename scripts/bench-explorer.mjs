// Benchmark: a 100,000-row run opened in the results explorer, in both places.
// Prints figures; asserts nothing about time (see BENCHMARKS.md, scenario 8).
//
//   cargo build --release -p shadow-native && bash web/build.sh && node scripts/bench-explorer.mjs [ROWS]
//
// 1. The CLI runs ROWS rows (default 100,000: the 300 example images, repeated)
//    against its built-in mock, and writes the HTML report at the end.
// 2. `shadow-batch report` writes the report again from the results file: the
//    time to build the explorer's data in Rust and write the file.
// 3. Chromium opens the report from disk (network blocked): time from navigation
//    to the explorer drawn (its `explorer-ready` performance mark), JS heap, and
//    the time of each interaction (filter, search, sort, matrix click, last page)
//    from the event to the next painted frame.
// 4. The page (`shadow-batch web`) opens the same run from its results and summary
//    files ("Open a finished run": the wasm builder in the browser, then the same
//    renderer): time from choosing the files to the explorer drawn.
// Each browser figure is the median of RUNS (3) fresh pages.
//
// Uses the release CLI when built (else debug; or $SHADOW_BATCH_BIN), Debian's
// chromium and web/node_modules' playwright-core.

import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const ROOT = resolve(import.meta.dirname, '..');
const { chromium } = createRequire(join(ROOT, 'web/package.json'))('playwright-core');
const TARGET = resolve(ROOT, process.env.CARGO_TARGET_DIR || 'target');
const BIN = process.env.SHADOW_BATCH_BIN
  || [join(TARGET, 'release/shadow-batch'), join(TARGET, 'debug/shadow-batch')].find(existsSync);
const ROWS = Number(process.argv[2] || 100_000);
const RUNS = 3;
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const fmt = (ms) => `${Math.round(ms)} ms`;

console.error(`== ${BIN}\n== load average: ${(await import('node:os')).loadavg().map((x) => x.toFixed(2)).join(' ')}`);

// 1. The run.
const dir = mkdtempSync(join(tmpdir(), 'shadow-bench-explorer-'));
mkdirSync(join(dir, 'images'));
const images = readdirSync(join(ROOT, 'training-data/images')).filter((n) => n.endsWith('.png')).sort();
for (const n of images) copyFileSync(join(ROOT, 'training-data/images', n), join(dir, 'images', n));
const labels = new Map(spawnSync('cat', [join(ROOT, 'training-data/labels.csv')], { encoding: 'utf8' }).stdout
  .trim().split('\n').slice(1).map((l) => l.split(',')).map(([img, label]) => [img.replace(/^images\//, ''), label]));
const rows = ['image,label'];
for (let i = 0; i < ROWS; i++) {
  const name = images[i % images.length];
  rows.push(`images/${name},${labels.get(name)}`);
}
const csv = join(dir, 'labels.csv');
writeFileSync(csv, rows.join('\n') + '\n');
let t = performance.now();
const run = spawnSync(BIN, [csv, '50', '0', '1', '--concurrency', '64', '--mock-latency-ms', '0', '--mock-error-rate', '0.02'],
  { encoding: 'utf8', env: { ...process.env, OPENAI_API_KEY: '' }, maxBuffer: 1 << 30 });
if (run.status !== 0 && run.status !== 1) throw new Error(run.stderr);
console.error(`== run of ${ROWS} rows: ${fmt(performance.now() - t)}`);
const pick = (re) => join(dir, readdirSync(dir).find((n) => re.test(n)));
const results = pick(/^shadow-mode-batch-results-.*\.jsonl$/);
const summary = pick(/^shadow-mode-batch-\d.*\.json$/);
const report = pick(/^shadow-mode-batch-report-.*\.html$/);

// 2. The report, written again.
const reportTimes = [];
for (let i = 0; i < RUNS; i++) {
  t = performance.now();
  const r = spawnSync(BIN, ['report', results], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(r.stderr);
  reportTimes.push(performance.now() - t);
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--enable-precise-memory-info'],
});

/** Time from `act` (run in the page) to the next painted frame. */
async function interaction(page, act) {
  return page.evaluate(async (code) => {
    const start = performance.now();
    new Function(code)();
    await new Promise((r) => requestAnimationFrame(() => setTimeout(r, 0)));
    return performance.now() - start;
  }, act);
}

const INTERACTIONS = {
  'disagreements only': "document.querySelector('.sx-filters input[name=disagreements]').click()",
  'failures only': "document.querySelector('.sx-filters input[name=disagreements]').click(); document.querySelector('.sx-filters input[name=failures]').click()",
  'sort by latency': "document.querySelector('.sx-filters input[name=failures]').click(); document.querySelector('.sx-results th[data-key=latency] button').click()",
  'text search (first: builds the index)': "const s = document.querySelector('.sx-filters input[type=search]'); s.value = 'digit-0042'; s.dispatchEvent(new Event('search'));",
  'matrix cell click': "document.querySelector('.sx-matrix button[data-label=\"3\"][data-predicted=\"5\"]').click()",
  'last page': "document.querySelector('.sx-clear').click(); [...document.querySelectorAll('.sx-pager button')].at(-1).click()",
};

// 3. The report from disk.
const open = { ready: [], heap: [] };
const acts = Object.fromEntries(Object.keys(INTERACTIONS).map((k) => [k, []]));
for (let i = 0; i < RUNS; i++) {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  await page.route('**/*', (r) => (r.request().url().startsWith('file:') ? r.continue() : r.abort()));
  await page.goto(pathToFileURL(report).href);
  await page.waitForSelector('#explorer[data-ready]', { timeout: 120_000 });
  open.ready.push(await page.evaluate(() => performance.getEntriesByName('explorer-ready')[0].startTime));
  open.heap.push(await page.evaluate(() => performance.memory.usedJSHeapSize / 2 ** 20));
  for (const [name, code] of Object.entries(INTERACTIONS)) {
    acts[name].push(await interaction(page, code));
  }
  await page.close();
}

// 4. The page, opening the run's files.
const server = spawn(BIN, ['web', '--port', '0'], { stdio: ['ignore', 'pipe', 'ignore'] });
const url = await new Promise((r) => { let o = ''; server.stdout.on('data', (d) => { o += d; const m = o.match(/page at (http:\S+)\//); if (m) r(m[1]); }); });
const pageOpen = [];
for (let i = 0; i < RUNS; i++) {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  await page.goto(url);
  await page.waitForFunction(() => window.__shadow && window.__shadow.explorer);
  await page.click('#open-run summary');
  const start = await page.evaluate(() => performance.now());
  await page.setInputFiles('#open-run-files', [results, summary]);
  await page.waitForSelector('#explorer[data-ready]', { timeout: 120_000 });
  pageOpen.push(await page.evaluate((s) => performance.getEntriesByName('explorer-ready')[0].startTime - s, start));
  await page.close();
}
server.kill();
await browser.close();

const mib = (p) => (statSync(p).size / 2 ** 20).toFixed(1);
console.log(`\nResults explorer, ${ROWS.toLocaleString('en-US')} rows (median of ${RUNS})`);
console.log(`| figure | measured |\n|---|---|`);
console.log(`| results file / HTML report size | ${mib(results)} MiB / ${mib(report)} MiB |`);
console.log(`| \`shadow-batch report\` (read, build data, write HTML) | ${fmt(median(reportTimes))} |`);
console.log(`| report from disk: navigation to explorer drawn | ${fmt(median(open.ready))} |`);
console.log(`| report: JS heap after drawing | ${median(open.heap).toFixed(0)} MiB |`);
for (const [name, times] of Object.entries(acts)) console.log(`| report: ${name} | ${fmt(median(times))} |`);
console.log(`| page: "Open a finished run" (results + summary) to explorer drawn | ${fmt(median(pageOpen))} |`);
