// The page's run lifecycle, tried as a new user tries it (issue 11, part 3): one
// runner at a time; Cancel and Pause that end in the state they say; interrupted,
// cancelled and aborted runs offered for resume, failed rows retried, old runs not
// offered forever and stored runs listed and deleted; a preflight before Start; an
// aborted run's next step next to the field to fix; the live line's retries, 429s
// and pace; the form showing the settings a resumed run uses; the mock's model name;
// phone width; accessible names.
//
// Each test drives the page as a user does (clicks, file choosers, reloads) and
// waits on the page's own state, never on a guessed delay.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { readFileSync } from 'node:fs';
import {
  IMAGES, launch, shutdown, serve, openPage, ready, chooseData, fill, fieldProblem, waitForLines, waitForEnd, results, rowsOf,
  writeCsv,
} from './harness.mjs';

before(launch);
after(shutdown);

const button = (page, name) => page.getByRole('button', { name, exact: true }).first();

/** The page raised no error; its context is closed. */
async function finish(page) {
  assert.deepEqual(page.errors, []);
  await page.context().close();
}

/** Marks the run shown now as seen, so that `nextEnd` waits for another one. */
async function markSeen(page) {
  await page.evaluate(() => {
    window.__seen = window.__seen || new WeakSet();
    if (window.__shadow.summary) window.__seen.add(window.__shadow.summary);
  });
}

/** Waits for a run that ends after `markSeen`; returns the status text. */
async function nextEnd(page, timeout = 90_000) {
  await page.waitForFunction(() => {
    const s = window.__shadow.summary;
    return s && !(window.__seen && window.__seen.has(s)) && document.querySelector('#status[data-final]');
  }, null, { timeout });
  return page.textContent('#status');
}

function assertEveryRowOnce(lines, n = 300) {
  const rows = rowsOf(lines);
  assert.equal(rows.length, n, `${rows.length} result lines for ${n} rows`);
  assert.equal(new Set(rows).size, n);
}

// Item 1: never two runners.

test('a run started while a resume offer is on screen is the only runner: the offer cannot start a second', async () => {
  const url = await serve(['--latency-ms', '250', '--error-rate', '0']);
  const page = await openPage(url);
  await chooseData(page);
  await page.click('#start');
  await waitForLines(page, 20);
  await page.reload();
  await ready(page);
  await page.waitForSelector('#resume-offer:not([hidden])');

  // The user ignores the offer and starts a new run of the CSV.
  await chooseData(page);
  await page.click('#start');
  await page.waitForFunction(() => window.__shadow.lines.length >= 1 && !document.querySelector('#status[data-final]'));
  const newRunId = await page.evaluate(() => window.__shadow.runId);
  const offer = button(page, 'Resume it');
  const usable = (await offer.isVisible()) && (await offer.isEnabled());
  if (usable) await offer.click(); // what the user could do on the old page

  await waitForEnd(page);
  const { summary, lines, reportsShown } = await results(page);
  assertEveryRowOnce(lines);
  assert.equal(reportsShown.length, 6, 'each batch reported once');
  assert.equal(summary.runId, newRunId);
  assert.equal(usable, false, 'the resume offer stayed usable while a run was active');
  assert.deepEqual(page.errors, []);
  await finish(page);
});

// Item 2: Cancel and Pause end in the state they say.

test('Cancel while paused, with nothing in flight, ends the run as interrupted, not "cancelling…"', async () => {
  const url = await serve(['--latency-ms', '200', '--error-rate', '0']);
  const page = await openPage(url);
  await chooseData(page);
  await page.click('#start');
  await waitForLines(page, 5);
  await page.click('#pause');
  await page.waitForFunction(() => window.__shadow.run.counts().inFlight === 0);
  await page.click('#cancel');
  const status = await waitForEnd(page);
  assert.doesNotMatch(status, /cancelling/);
  assert.match(status, /interrupted/);
  assert.equal(await page.isDisabled('#cancel'), true);
  assert.equal(await page.isEnabled('#start'), true);
  await finish(page);
});

test('Cancel between two paced starts ends the run as interrupted, not "cancelling…"', async () => {
  const url = await serve(['--latency-ms', '0', '--error-rate', '0']);
  const page = await openPage(url);
  await chooseData(page);
  await fill(page, { delay: 5000, concurrency: 1 });
  await page.click('#start');
  // The first answer is in; the next start is seconds away.
  await page.waitForFunction(() => window.__shadow.lines.length >= 1 && window.__shadow.run.counts().inFlight === 0);
  await page.click('#cancel');
  const status = await waitForEnd(page);
  assert.doesNotMatch(status, /cancelling/);
  assert.match(status, /interrupted/);
  // Issue 21 item 6: no time remaining is promised for a run that was cancelled.
  const live = await page.textContent('#stats');
  assert.match(live, /done/);
  assert.doesNotMatch(live, /ETA/, live);
  await finish(page);
});

test('after Pause then Cancel, the next run\'s Pause button says Pause and pauses', async () => {
  const url = await serve(['--latency-ms', '200', '--error-rate', '0']);
  const page = await openPage(url);
  await chooseData(page);
  await page.click('#start');
  await waitForLines(page, 3);
  await page.click('#pause');
  assert.equal((await page.textContent('#pause')).trim(), 'Resume');
  await page.click('#cancel');
  await waitForEnd(page);
  await markSeen(page);

  await page.click('#start');
  await page.waitForFunction(() => window.__shadow.run && !window.__shadow.summary && !window.__shadow.run.isPaused()
    && !document.querySelector('#status[data-final]'));
  assert.equal((await page.textContent('#pause')).trim(), 'Pause');
  await page.click('#pause');
  await page.waitForFunction(() => window.__shadow.run.isPaused());
  assert.equal((await page.textContent('#pause')).trim(), 'Resume');
  await page.click('#cancel');
  assert.match(await nextEnd(page), /interrupted/);
  await finish(page);
});

// Item 3: what can be resumed, retried, listed and deleted.

test('a cancelled run is offered for resume, in the same session and after a reload, and resumes to every row once', async () => {
  const url = await serve(['--latency-ms', '100', '--error-rate', '0']);
  const page = await openPage(url);
  await chooseData(page);
  await page.click('#start');
  await waitForLines(page, 30);
  await page.click('#cancel');
  assert.match(await waitForEnd(page), /interrupted/);
  await button(page, 'Resume it').waitFor({ state: 'visible', timeout: 5_000 });

  await page.reload();
  await ready(page);
  await button(page, 'Resume it').waitFor({ state: 'visible', timeout: 5_000 });
  assert.match(await page.textContent('#resume-offer'), /labels\.csv/);
  await chooseData(page, { csv: null });
  await button(page, 'Resume it').click();
  assert.match(await waitForEnd(page), /completed/);
  const { summary, lines } = await results(page);
  assert.equal(summary.statistics.processed, 300);
  assert.ok(summary.statistics.resumedItems >= 30, JSON.stringify(summary.statistics));
  assertEveryRowOnce(lines);
  await finish(page);
});

test('failed rows can be retried from the page: only they run again, each row ends once in the results', async () => {
  const url = await serve(['--latency-ms', '0', '--error-rate', '0.3']);
  const page = await openPage(url);
  await chooseData(page);
  await fill(page, { retries: 0 });
  await page.click('#start');
  assert.match(await waitForEnd(page), /completed/);
  const first = await results(page);
  const failed = first.summary.statistics.failed;
  assert.ok(failed > 30, `${failed} failed`);
  await markSeen(page);

  // The user allows retries this time (the form is the resumed run's) and retries.
  await fill(page, { retries: 5 });
  await button(page, 'Retry failed').click();
  assert.match(await nextEnd(page), /completed/);
  const { summary, lines } = await results(page);
  assert.equal(summary.runId, first.summary.runId);
  assert.equal(summary.config.maxRetries, 5);
  assert.ok(summary.statistics.failed < failed / 5, `${summary.statistics.failed} still failed of ${failed}`);
  assert.equal(summary.statistics.resumedItems, 300 - failed);
  assertEveryRowOnce(lines);
  const [download] = await Promise.all([page.waitForEvent('download'), page.click('#dl-results')]);
  assertEveryRowOnce(readFileSync(await download.path(), 'utf8').split('\n').filter(Boolean));
  await finish(page);
});

test('an old run the user ignored is not offered forever; stored runs are listed and can be deleted', async () => {
  const url = await serve(['--latency-ms', '150', '--error-rate', '0']);
  const page = await openPage(url);
  await chooseData(page);
  await page.click('#start');
  await waitForLines(page, 20);
  await page.reload(); // run A, left unfinished
  await ready(page);
  await page.waitForSelector('#resume-offer:not([hidden])');

  // Ignored: run B of the same CSV, to the end.
  await chooseData(page);
  await fill(page, { concurrency: 32 });
  await page.click('#start');
  assert.match(await waitForEnd(page), /completed/);

  await page.reload();
  await ready(page);
  assert.equal(await page.isHidden('#resume-offer'), true, 'run A is still offered after a later run of its CSV completed');

  // Both runs are listed, with what each holds; deleting one keeps the other.
  await page.click('#stored-runs > summary');
  const rows = page.locator('#stored-runs tbody tr');
  assert.equal(await rows.count(), 2);
  const text = await page.textContent('#stored-runs');
  assert.match(text, /labels\.csv/);
  assert.match(text, /completed/);
  await rows.filter({ hasText: /interrupted/ }).getByRole('button', { name: /Delete/ }).click();
  await page.waitForFunction(() => document.querySelectorAll('#stored-runs tbody tr').length === 1);
  await page.reload();
  await ready(page);
  assert.equal(await page.locator('#stored-runs tbody tr').count(), 1);
  assert.match(await page.textContent('#stored-runs tbody'), /completed/);
  await finish(page);
});

// Item 4: preflight, and the next step of an aborted run by its field.

test('before Start the page says what will happen, and refuses a run that would fail every row for a missing folder', async () => {
  const url = await serve(['--latency-ms', '0']);
  const page = await openPage(url);
  await chooseData(page, { images: false });
  await page.waitForFunction(() => /300 rows, 0 images found: choose the images folder/.test(document.getElementById('data-info').textContent),
    null, { timeout: 5_000 });
  await page.click('#start');
  await page.waitForSelector('#images[aria-invalid=true]', { timeout: 5_000 });
  assert.equal(await page.evaluate(() => window.__shadow.runner), null, 'a run started that would fail every row');
  assert.equal(await page.isHidden('#live'), true);
  assert.match((await fieldProblem(page, 'images')).text, /choose the images folder/);

  await page.setInputFiles('#images', IMAGES);
  await page.waitForFunction(() => /300 rows, 300 images matched/.test(document.getElementById('data-info').textContent));
  assert.equal((await fieldProblem(page, 'images')).invalid, false);
  await page.click('#start');
  assert.match(await waitForEnd(page), /completed/);
  await finish(page);
});

test('a run aborted for a wrong key says to check the API key next to that field, and resumes once it is fixed', async () => {
  const url = await serve(['--latency-ms', '0', '--require-key', 'right-key', '--error-rate', '0']);
  const page = await openPage(url);
  await chooseData(page);
  await page.check('input[name=endpoint][value=openai]');
  await fill(page, { 'base-url': `${url}/v1`, 'api-key': 'wrong-key' });
  await page.click('#start');
  assert.match(await waitForEnd(page), /aborted/);
  const problem = await fieldProblem(page, 'api-key');
  assert.equal(problem.invalid, true);
  assert.match(problem.text, /API key/);
  assert.doesNotMatch(problem.text, /wrong-key/);
  await markSeen(page);

  await fill(page, { 'api-key': 'right-key' });
  assert.equal((await fieldProblem(page, 'api-key')).invalid, false, 'the mark goes once the field is edited');
  await button(page, 'Resume it').click();
  assert.match(await nextEnd(page), /completed/);
  assertEveryRowOnce((await results(page)).lines);
  await finish(page);
});

test('a run whose endpoint cannot be reached says to check the Base URL next to that field', async () => {
  const port = await new Promise((res) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => res(p)); });
  });
  const csv = writeCsv('urls.csv', ['image,label', 'https://example.test/a.png,cat', 'https://example.test/b.png,dog', 'https://example.test/c.png,cat']);
  const url = await serve(['--latency-ms', '0']);
  const page = await openPage(url);
  await page.setInputFiles('#csv', csv);
  await page.check('input[name=endpoint][value=openai]');
  await fill(page, { 'base-url': `http://127.0.0.1:${port}/v1`, 'api-key': 'some-key', retries: 0 });
  await page.click('#start');
  // Three rows, no retries: each fails, too few failures for the core to stop the
  // run; the page sees that no request reached the endpoint.
  assert.match(await waitForEnd(page), /completed: 3 of 3 rows failed/);
  let problem = await fieldProblem(page, 'base-url');
  assert.equal(problem.invalid, true);
  assert.match(problem.text, /Base URL/);
  await markSeen(page);

  // Enough rows for the core to stop the run as unreachable: the same place.
  const many = writeCsv('many.csv', ['image,label', ...Array.from({ length: 30 }, (_, i) => `https://example.test/${i}.png,cat`)]);
  await page.setInputFiles('#csv', many);
  await page.click('#start');
  assert.match(await nextEnd(page), /aborted/);
  problem = await fieldProblem(page, 'base-url');
  assert.equal(problem.invalid, true);
  assert.match(problem.text, /Base URL/);
  await finish(page);
});

test('CSV names and image paths are text in the check before Start, the offers and the stored runs', async () => {
  const hostile = '<img src=x onerror=alert(1)>';
  const csv = writeCsv(`${hostile}.csv`, ['image,label', `images/${hostile}.png,cat`, 'images/digit-0001.png,dog']);
  const url = await serve(['--latency-ms', '0']);
  const page = await openPage(url);
  await page.setInputFiles('#csv', csv);
  await page.setInputFiles('#images', IMAGES);
  await page.waitForFunction(() => /not in the chosen folder/.test(document.getElementById('data-info').textContent));
  assert.ok((await page.textContent('#data-info')).includes(`images/${hostile}.png`));
  await page.click('#start');
  assert.match(await waitForEnd(page), /completed: 1 of 2 rows failed/);
  await page.waitForSelector('#resume-offer:not([hidden])');
  assert.ok((await page.textContent('#resume-offer')).includes(`${hostile}.csv`));
  await page.click('#stored-runs > summary');
  assert.ok((await page.textContent('#stored-runs tbody')).includes(`${hostile}.csv`));
  // (The results explorer shows the chosen folder's images: only those.)
  assert.equal(await page.$$eval('img[src="x"], [onerror]', (els) => els.length), 0);
  assert.deepEqual(page.dialogs, []);
  await finish(page);
});

// Item 5: the live line, the form of a resumed run, the mock's model, phone width,
// accessible names.

test('the live line shows retries, 429s and the pace the run follows', async () => {
  const url = await serve(['--latency-ms', '50', '--rpm', '240', '--error-rate', '0.1']);
  const page = await openPage(url);
  await chooseData(page);
  await page.click('#start');
  await page.waitForFunction(() => {
    const t = document.getElementById('stats').textContent;
    return /429s [1-9]/.test(t) && /retries [1-9]/.test(t) && /from the endpoint/.test(t);
  }, null, { timeout: 30_000 });
  // The core's words for the pace (Pace::describe), as the CLI's progress bar shows it.
  assert.match(await page.textContent('#stats'), /pace: 240\/min from the endpoint, up to \d+ in flight/);
  await page.click('#cancel');
  await waitForEnd(page);
  await finish(page);
});

test('a resumed run\'s form shows the settings the run uses', async () => {
  const url = await serve(['--latency-ms', '250', '--error-rate', '0']);
  const page = await openPage(url);
  await chooseData(page);
  await fill(page, { 'batch-size': 25, concurrency: 4, seed: 7 });
  await page.click('#start');
  await waitForLines(page, 12);
  await page.reload();
  await ready(page);
  assert.equal(await page.inputValue('#batch-size'), '50', 'a fresh page shows the defaults');
  await chooseData(page, { csv: null });
  await button(page, 'Resume it').click();
  await page.waitForFunction(() => window.__shadow.runner && !document.querySelector('#status[data-final]'));
  assert.equal(await page.inputValue('#batch-size'), '25');
  assert.equal(await page.inputValue('#concurrency'), '4');
  assert.equal(await page.inputValue('#seed'), '7');
  await waitForEnd(page);
  const { summary, reportsShown, lines } = await results(page);
  assert.equal(summary.config.batchSize, 25);
  assert.equal(summary.totalBatches, 12);
  assert.ok(reportsShown.length >= 1);
  assertEveryRowOnce(lines);
  await finish(page);
});

test('the Model field shows the mock\'s model while the mock is chosen, and the user\'s model otherwise', async () => {
  const url = await serve([]);
  const page = await openPage(url);
  const { mock, fallback } = await page.evaluate(async () => {
    const { mockModel, defaultConfig } = await import('./pkg/shadow_wasm.js');
    return { mock: mockModel(), fallback: defaultConfig().provider.model };
  });
  assert.notEqual(mock, fallback);
  assert.equal(await page.inputValue('#model'), mock);
  await page.check('input[name=endpoint][value=openai]');
  assert.equal(await page.inputValue('#model'), fallback);
  await page.fill('#model', 'my-model');
  await page.check('input[name=endpoint][value=mock]');
  assert.equal(await page.inputValue('#model'), mock);
  await page.check('input[name=endpoint][value=openai]');
  assert.equal(await page.inputValue('#model'), 'my-model');
  await finish(page);
});

test('at phone width nothing is cut off: tables scroll in their boxes; progress bar and tables have names', async () => {
  const url = await serve(['--latency-ms', '0']);
  const page = await openPage(url, { width: 390, height: 844 });
  await chooseData(page);
  await page.click('#start');
  await waitForEnd(page);
  const layout = await page.evaluate(() => {
    const vw = document.documentElement.clientWidth;
    const tables = [...document.querySelectorAll('table')].filter((t) => t.offsetParent).map((t) => {
      let box = t.parentElement;
      while (box && !['auto', 'scroll'].includes(getComputedStyle(box).overflowX)) box = box.parentElement;
      return { id: t.id, boxed: !!box && box.getBoundingClientRect().right <= vw + 0.5 };
    });
    return { vw, page: document.documentElement.scrollWidth, tables };
  });
  assert.ok(layout.page <= layout.vw, `the page is ${layout.page} px wide in a ${layout.vw} px viewport`);
  assert.ok(layout.tables.length >= 2);
  for (const t of layout.tables) assert.ok(t.boxed, `table ${t.id} is not in a scroll box within the viewport`);

  assert.equal(await page.getByRole('progressbar', { name: /progress/i }).count(), 1);
  assert.ok(await page.getByRole('table', { name: /confusion matrix/i }).count() >= 1);
  assert.ok(await page.getByRole('table', { name: /per label/i }).count() >= 1);
  const headers = await page.evaluate(() => [...document.querySelectorAll('.sx-matrix, .sx-perlabel')].map((t) => ({
    caption: t.caption?.textContent || '',
    cols: [...t.rows[0].cells].every((c) => c.tagName === 'TH' && c.getAttribute('scope') === 'col'),
    rows: [...t.rows].slice(1).every((r) => r.cells[0].tagName === 'TH' && r.cells[0].getAttribute('scope') === 'row'),
  })));
  assert.equal(headers.length, 2, 'one matrix and one per-label table');
  for (const h of headers) {
    assert.ok(h.caption, 'caption');
    assert.ok(h.cols, 'column headers');
    assert.ok(h.rows, 'row headers');
  }
  await finish(page);
});
