// Screenshots of the page mid-run for the README, at desktop and phone width:
//   cd web && node tests/screenshots.mjs
// writes docs/page-desktop.png and docs/page-phone.png: one screen of a run about
// 130 rows in (form, live line, the results explorer's headline), after an earlier
// run of the CSV was cut by a reload (it stays in the stored runs, not offered).
// Not a test (node --test picks *.test.mjs).

import { join } from 'node:path';
import { ROOT, launch, shutdown, serve, openPage, ready, chooseData, waitForLines } from './harness.mjs';

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
  await page.screenshot({ path: join(ROOT, 'docs', file) });
  await page.click('#cancel');
  await page.context().close();
}

await launch();
try {
  const url = await serve(['--latency-ms', '150', '--rpm', '600', '--error-rate', '0.05']);
  await shoot(url, { width: 1100, height: 900 }, 'page-desktop.png');
  await shoot(url, { width: 390, height: 844 }, 'page-phone.png');
} finally {
  await shutdown();
}
