// Screenshots of the page for docs/ (scripts/screenshots.sh runs this):
//   cd web && node tests/screenshots.mjs [OUT_DIR]
// writes page-desktop.png (1,280 px) and page-phone.png (390 px): one screen of a run about 130 rows
// in (form, live line, the results explorer's headline), after an earlier run of
// the CSV was cut by a reload (it stays in the stored runs, not offered); and
// screenshot.png: the top of the page after a whole run. OUT_DIR defaults to
// docs/; the CSV and images are $SHADOW_CSV and the images folder beside it
// (default: training-data/). Not a test (node --test picks *.test.mjs), so the
// tests never write into the repository.

import { mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { ROOT, CSV, launch, shutdown, serve, openPage, ready, waitForLines } from './harness.mjs';

const OUT = resolve(process.argv[2] || join(ROOT, 'docs'));
const csv = resolve(process.env.SHADOW_CSV || CSV);
const chooseData = (page) => page.setInputFiles('#csv', csv).then(() => page.setInputFiles('#images', join(dirname(csv), 'images')));
mkdirSync(OUT, { recursive: true });

async function shoot(url, viewport, file) {
  const page = await openPage(url, viewport);
  // A run cut by a reload: stored, and offered until a newer run of its CSV starts.
  await chooseData(page);
  await page.click('#start');
  await waitForLines(page, 10);
  await page.reload();
  await ready(page);
  // The run in the picture: a new one, paused mid-way.
  await chooseData(page);
  await page.click('#start');
  await waitForLines(page, 130, 60_000);
  // One screen: the top of the page at desktop width; at phone width, from the
  // form's buttons down (live line, the explorer's headline).
  await page.evaluate((phone) => {
    const top = phone ? document.querySelector('#setup .buttons').getBoundingClientRect().top + window.scrollY - 8 : 0;
    window.scrollTo(0, top);
  }, viewport.width < 600);
  await page.screenshot({ path: join(OUT, file) });
  await page.click('#cancel');
  await page.context().close();
}

await launch();
try {
  const url = await serve(['--latency-ms', '150', '--rpm', '600', '--error-rate', '0.05']);
  await shoot(url, { width: 1280, height: 1150 }, 'page-desktop.png');
  await shoot(url, { width: 390, height: 844 }, 'page-phone.png');
  // A whole run with the defaults: the top of the page once it ended.
  const page = await openPage(await serve([]), { width: 1280, height: 1280 });
  await chooseData(page);
  await page.click('#start');
  await page.waitForSelector('#status[data-final]', { timeout: 120_000 });
  await page.screenshot({ path: join(OUT, 'screenshot.png'), fullPage: false });
  await page.context().close();
} finally {
  await shutdown();
}
