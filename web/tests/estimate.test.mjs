// The estimate before Start in the page's Data box: the same lines as
// `shadow-batch estimate` for the same CSV and settings (the core works both
// out), nothing sent, and again when a setting changes.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';

import { BIN, CSV, IMAGES, launch, openPage, serve, shutdown } from './harness.mjs';

before(launch);
after(shutdown);

/** The CLI's estimate lines as [name, value], without its flag hints. */
function cliLines(args) {
  const cli = spawnSync(BIN, ['estimate', CSV, ...args], { encoding: 'utf8', env: { ...process.env, OPENAI_API_KEY: '' } });
  assert.equal(cli.status, 0, cli.stderr);
  return cli.stdout.split('\n').slice(1)
    .map((l) => l.match(/^ {3}([A-Z][^:]*):\s+(.*)$/))
    .filter(Boolean)
    .map((m) => [m[1], m[2]]);
}

const pageLines = (page) => page.$$eval('#data-estimate dt', (dts) => dts.map((dt) => [dt.textContent, dt.nextElementSibling.textContent]));

test('the Data box shows the CLI estimate before Start, and follows the settings', async () => {
  const url = await serve(['--latency-ms', '0']);
  const page = await openPage(url);
  await page.setInputFiles('#csv', CSV);
  await page.setInputFiles('#images', IMAGES);
  await page.waitForSelector('#data-estimate:not([hidden])');
  const shown = await pageLines(page);
  assert.deepEqual(shown, cliLines([]));
  assert.ok(shown.some(([n, v]) => n === 'Image sizes' && v === '64x64 (read from 300 images)'), JSON.stringify(shown));

  await page.fill('#rpm', '60');
  await page.dispatchEvent('#rpm', 'change');
  await page.waitForFunction(() => document.querySelector('#data-estimate').textContent.includes('60 requests a minute'));
  assert.deepEqual(await pageLines(page), cliLines(['--rpm', '60']));
  // A sample and a stop: the sample's rows, and the likely stop, as the CLI says.
  await page.fill('#seed', '7');
  await page.fill('#sample-size', '60');
  await page.fill('#until-interval', '0.1');
  for (const id of ['#seed', '#sample-size', '#until-interval']) await page.dispatchEvent(id, 'change');
  await page.waitForFunction(() => document.querySelector('#data-estimate').textContent.includes('Until interval'));
  const sampled = cliLines(['--rpm', '60', '--seed', '7', '--sample', '60', '--until-interval', '0.1']);
  assert.ok(sampled.some(([n, v]) => n === 'Rows' && v.startsWith('60 sampled of 300')), JSON.stringify(sampled));
  assert.ok(sampled.some(([n]) => n === 'Until interval'), JSON.stringify(sampled));
  assert.deepEqual(await pageLines(page), sampled);
  // Nothing was started: no run, no result.
  assert.equal(await page.evaluate(() => window.__shadow.lines.length), 0);
  assert.deepEqual(page.errors, []);
});
