// Screenshots of issue 23 on the page and in the report (not a test):
//   cd web && node tests/sample-screenshots.mjs [OUT_DIR]
// writes data-box-{1280,390}.png (the Data box with a sample and a stop) and
// sample-report-{1280,390}.png (the head of the CLI's HTML report of a run over a
// 150-row sample stopped at ±10 points) into OUT_DIR (default: a temporary
// folder; docs/sample-report.png is sample-report-1280.png).

import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { BIN, CSV, launch, shutdown, serve, openPage, newPage, chooseData, fill } from './harness.mjs';

const OUT = resolve(process.argv[2] || mkdtempSync(join(tmpdir(), 'shadow-shots-')));
mkdirSync(OUT, { recursive: true });
const WIDTHS = [{ width: 1280, height: 900 }, { width: 390, height: 844 }];

await launch();
try {
  const url = await serve(['--latency-ms', '0']);
  for (const viewport of WIDTHS) {
    const page = await openPage(url, viewport);
    await chooseData(page);
    await fill(page, { 'sample-size': '0.5', 'until-interval': '0.05', seed: 7 });
    await page.dispatchEvent('#until-interval', 'change');
    await page.waitForFunction(() => document.querySelector('#sample-note').textContent.includes('±5.0'));
    await page.waitForSelector('#data-estimate:not([hidden])');
    await page.locator('fieldset').first().screenshot({ path: join(OUT, `data-box-${viewport.width}.png`) });
    await page.context().close();
  }
  const dir = mkdtempSync(join(tmpdir(), 'shadow-shots-run-'));
  const r = spawnSync(BIN, [CSV, '--mock-latency-ms', '0', '--out-dir', dir, '--sample', '150', '--until-interval', '0.1',
    '--seed', '11', '10'], { encoding: 'utf8', env: { ...process.env, OPENAI_API_KEY: '' } });
  if (r.status > 1) throw new Error(r.stderr);
  const report = join(dir, readdirSync(dir).find((f) => f.startsWith('shadow-mode-batch-report-')));
  for (const viewport of WIDTHS) {
    const { page } = await newPage(viewport);
    await page.goto(pathToFileURL(report).href);
    await page.waitForSelector('.sx-sampling');
    await page.locator('.sx-head').screenshot({ path: join(OUT, `sample-report-${viewport.width}.png`) });
    await page.context().close();
  }
  console.log(`screenshots in ${OUT}`);
} finally {
  await shutdown();
}
