// The row's own evidence and slices by any column (issue 21, items 8 and 9), in the
// explorer the page and the CLI's HTML report share, at 1,280 and 390 px:
//
// - a row of the results table (the row, its number or its thumbnail) opens its
//   view: the image large, the label, the model's label, what the model said (the
//   results file's raw answer, isolated and scrollable), attempts, latency, tokens,
//   cost, HTTP status, and the error with its kind on failure; Escape closes it and
//   focus goes back to what opened it. Tokens and cost are columns of the table,
//   sortable like the others;
// - a "Slices" section breaks agreement, kappa and failures down by the values of
//   a column of the CSV (chosen; kept in the URL fragment), worst first, each
//   figure the summary's; a column with too many values is listed as not sliced.
//
// The CLI binary is $SHADOW_BATCH_BIN, else target/debug/shadow-batch under
// $CARGO_TARGET_DIR (relative to the repository root) or the repository's target/.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

import {
  BIN, CSV, IMAGES, ROOT, chooseData, launch, newPage, openPage, serve, shutdown, waitForEnd,
} from './harness.mjs';

before(launch);
after(shutdown);

const VIEWPORTS = [{ width: 1280, height: 900 }, { width: 390, height: 844 }];
const RUN_ID = '2025-01-24T10-30-00-000Z';

/** Opens a report from disk (at `fragment`) with every request that is not a file refused. */
async function openReport(path, viewport, fragment = '') {
  const { context, page } = await newPage(viewport);
  page.attempted = [];
  await context.route('**/*', (route) => {
    if (route.request().url().startsWith('file:')) return route.continue();
    page.attempted.push(route.request().url());
    return route.abort();
  });
  await page.goto(pathToFileURL(path).href + fragment);
  await page.waitForSelector('#explorer[data-ready]');
  return page;
}

const shownRows = (page) => page.$$eval('.sx-results tbody tr[data-row]', (trs) => trs.map((tr) => Number(tr.dataset.row)));

/** The open row view: heading, facts by name, the answer's text, the image's state. */
function rowView(page) {
  return page.evaluate(() => {
    const d = document.querySelector('dialog.sx-rowview');
    if (!d || !d.open) return null;
    const facts = {};
    for (const f of d.querySelectorAll('.sx-rv-fact')) facts[f.querySelector('dt').textContent] = f.querySelector('dd').textContent;
    const pre = d.querySelector('pre.sx-answer');
    const img = d.querySelector('.sx-rv-image img');
    const box = d.getBoundingClientRect();
    return {
      heading: d.querySelector('h2').textContent,
      verdict: d.querySelector('.sx-rv-verdict').textContent,
      facts,
      answer: pre ? {
        text: pre.textContent, isolated: !!pre.querySelector('bdi'), whiteSpace: getComputedStyle(pre).whiteSpace,
        scrollable: pre.scrollHeight > pre.clientHeight + 1, sideways: pre.scrollWidth > pre.clientWidth + 1,
      } : null,
      noAnswer: (d.querySelector('.sx-rv-noanswer') || {}).textContent || null,
      image: img ? { loaded: img.complete && img.naturalWidth > 0, width: img.getBoundingClientRect().width } : null,
      inside: box.left >= 0 && box.right <= innerWidth + 0.5 && box.top >= 0 && box.bottom <= innerHeight + 0.5,
      modal: d.matches(':modal'),
    };
  });
}

/** The element focused once the view has closed: its class and the row it is in. */
async function focused(page) {
  await page.waitForFunction(() => !document.querySelector('dialog.sx-rowview')?.open && document.activeElement !== document.body, null, { timeout: 2000 })
    .catch(() => {});
  return page.evaluate(() => {
    const a = document.activeElement;
    return { cls: a.className, row: a.closest('tr[data-row]')?.dataset.row ?? null };
  });
}

// ---------------------------------------------------------------------------
// Item 8: the row's own evidence
// ---------------------------------------------------------------------------

// A long answer (1,000 characters over many lines) that starts with a
// right-to-left override and holds markup: isolated, escaped as the console writes
// it, shown as text, scrollable.
const LONG_ANSWER = `\u202eoverride <img src=x onerror=window.__pwned=1>\n${'The animal has long ears and a short tail; it could be a dog.\n'.repeat(15)}{"label": "dog"}`;
const SHOWN_LONG_ANSWER = LONG_ANSWER.replace('\u202e', '\\u{202e}');

/** Results of 6 rows with the evidence the results file keeps: tokens, cost, answer, HTTP status. */
function evidenceResults() {
  const usage = (total) => ({ promptTokens: total - 10, completionTokens: 10, totalTokens: total });
  const rows = [
    { label: 'cat', prediction: 'cat', attempts: 1, latencyMs: 120, tokens: 1200, costUsd: 0.00018, answer: '{"label":"cat"}' },
    { label: 'cat', prediction: 'dog', attempts: 2, latencyMs: 850, tokens: 3400, costUsd: 0.00051, answer: LONG_ANSWER },
    { label: 'dog', prediction: null, attempts: 3, latencyMs: 300, httpStatus: 500, error: 'HTTP 500: server error', errorKind: 'http' },
    { label: 'dog', prediction: 'dog', attempts: 1, latencyMs: 90, tokens: 900, costUsd: 0.000135, answer: 'dog' },
    { label: 'bird', prediction: 'bird', attempts: 1, latencyMs: 110, tokens: 2000, costUsd: 0.0003, answer: '{"label":"bird"}' },
    { label: 'bird', prediction: 'cat', attempts: 1, latencyMs: 130, tokens: 1500, costUsd: 0.000225, answer: 'It looks like a cat.' },
  ];
  return rows.map((r, row) => JSON.stringify({
    row, line: row + 2, image: `images/digit-${String(row).padStart(4, '0')}.png`, label: r.label, prediction: r.prediction,
    agreement: r.prediction === null ? null : r.prediction === r.label, status: r.prediction === null ? 'failed' : 'success',
    attempts: r.attempts, latencyMs: r.latencyMs, error: r.error || null, ...(r.errorKind ? { errorKind: r.errorKind } : {}),
    httpStatus: r.httpStatus || 200, ...(r.tokens ? { usage: usage(r.tokens), costUsd: r.costUsd, answer: r.answer } : {}),
    finishedAt: '2025-01-24T10:30:00.000Z',
  })).join('\n') + '\n';
}

let evidenceReport;
before(() => {
  const dir = mkdtempSync(join(tmpdir(), 'shadow-evidence-'));
  const results = join(dir, `shadow-mode-batch-results-${RUN_ID}.jsonl`);
  writeFileSync(results, evidenceResults());
  const r = spawnSync(BIN, ['report', results, '--images-dir', join(ROOT, 'training-data')], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  evidenceReport = join(dir, `shadow-mode-batch-report-${RUN_ID}.html`);
});

test('row view: a row, its number or its thumbnail opens the image large with the label, the answer, tokens, cost and the error; Escape closes it and focus returns, at 1,280 and 390 px', async () => {
  for (const viewport of VIEWPORTS) {
    const where = `${viewport.width} px`;
    const page = await openReport(evidenceReport, viewport);

    // Tokens and cost are columns of the table.
    const cells = await page.$eval('.sx-results tr[data-row="1"]', (tr) => {
      const heads = [...document.querySelectorAll('.sx-results thead th')].map((th) => th.dataset.key);
      return { tokens: tr.children[heads.indexOf('tokens')]?.textContent, cost: tr.children[heads.indexOf('cost')]?.textContent };
    });
    assert.deepEqual(cells, { tokens: '3,400', cost: '$0.00051' }, where);

    // A click on the row (its label cell) opens its view.
    await page.click('.sx-results tr[data-row="1"] td.sx-label');
    await page.waitForSelector('dialog.sx-rowview[open]');
    let view = await rowView(page);
    assert.equal(view.heading, 'Row 2 · CSV line 3', where);
    assert.equal(view.verdict, '✗ the model differs from the label', where);
    assert.deepEqual(view.facts, {
      Label: 'cat', 'Model\'s label': 'dog', Attempts: '2 (1 retry)', Latency: '850 ms (the last attempt)',
      Tokens: '3,400', Cost: '$0.00051', 'HTTP status': '200',
    }, where);
    assert.deepEqual(view.answer, { text: SHOWN_LONG_ANSWER, isolated: true, whiteSpace: 'pre-wrap', scrollable: true, sideways: false }, where);
    assert.equal(view.modal, true, where);
    assert.equal(await page.evaluate(() => document.querySelectorAll('dialog.sx-rowview img').length), 1, `${where}: the answer's markup is text`);
    assert.equal(await page.evaluate(() => window.__pwned), undefined, where);
    assert.ok(view.inside, `${where}: the view fits the screen`);
    await page.waitForFunction(() => document.querySelector('dialog.sx-rowview img')?.complete);
    view = await rowView(page);
    assert.ok(view.image.loaded, `${where}: the image loads`);
    assert.ok(view.image.width >= 150, `${where}: the image large (${view.image.width}px; the thumbnail is 40)`);
    await page.keyboard.press('Escape');
    assert.equal(await rowView(page), null, `${where}: Escape closes it`);
    assert.deepEqual(await focused(page), { cls: 'sx-open', row: '1' }, `${where}: focus back on the row`);

    // The thumbnail of a failed row: the error and its kind, no answer.
    await page.click('.sx-results tr[data-row="2"] .sx-thumb-open');
    await page.waitForSelector('dialog.sx-rowview[open]');
    view = await rowView(page);
    assert.equal(view.heading, 'Row 3 · CSV line 4', where);
    assert.deepEqual(view.facts, {
      Label: 'dog', 'Model\'s label': '— (no prediction)', Attempts: '3 (2 retries)', Latency: '300 ms (the last attempt)',
      Tokens: '– (none reported)', Cost: '–', 'HTTP status': '500', 'Error kind': 'HTTP error (http)', Error: 'HTTP 500: server error',
    }, where);
    assert.equal(view.answer, null, where);
    assert.match(view.noAnswer, /failed before one could be read/, where);
    await page.keyboard.press('Escape');
    assert.deepEqual(await focused(page), { cls: 'sx-thumb-open', row: '2' }, `${where}: focus back on the thumbnail`);

    // By keyboard: Enter on a row's number, › to the next row of the table, the close button.
    await page.focus('.sx-results tr[data-row="0"] .sx-open');
    await page.keyboard.press('Enter');
    await page.waitForSelector('dialog.sx-rowview[open]');
    assert.equal((await rowView(page)).heading, 'Row 1 · CSV line 2', where);
    await page.click('dialog.sx-rowview button[aria-label="next row"]');
    view = await rowView(page);
    assert.equal(view.heading, 'Row 2 · CSV line 3', where);
    assert.equal(view.facts.Tokens, '3,400', where);
    await page.click('dialog.sx-rowview .sx-rv-close');
    assert.equal(await rowView(page), null, where);
    assert.deepEqual(await focused(page), { cls: 'sx-open', row: '0' }, where);

    // Sorting by tokens and by cost, rows without them last either way.
    await page.click('.sx-results th[data-key=tokens] button');
    assert.deepEqual(await shownRows(page), [3, 0, 5, 4, 1, 2], where);
    await page.click('.sx-results th[data-key=cost] button');
    await page.click('.sx-results th[data-key=cost] button');
    assert.equal(await page.getAttribute('.sx-results th[data-key=cost]', 'aria-sort'), 'descending', where);
    assert.deepEqual(await shownRows(page), [1, 4, 5, 0, 3, 2], where);
    // The search reaches what the model said.
    await page.fill('.sx-filters input[type=search]', 'looks like');
    await page.waitForFunction(() => document.querySelectorAll('.sx-results tbody tr[data-row]').length === 1);
    assert.deepEqual(await shownRows(page), [5], where);

    assert.equal(await page.evaluate(() => document.documentElement.scrollWidth > innerWidth), false, `${where}: the page fits`);
    assert.deepEqual(page.attempted, [], where);
    assert.deepEqual(page.errors, [], where);
    await page.context().close();
  }
});

// ---------------------------------------------------------------------------
// Item 9: slices by any column
// ---------------------------------------------------------------------------

/**
 * The shipped CSV with three more columns: `site` (rows 0–199 alternately town
 * and hill, rows 200–299 harbour), `camera` (A, B, C in turn) and `taken_at` (a
 * time per row: 300 values, too many to slice). Its images are copied beside it.
 */
function siteCsv() {
  const dir = mkdtempSync(join(tmpdir(), 'shadow-slices-'));
  mkdirSync(join(dir, 'images'));
  for (const name of readdirSync(IMAGES)) copyFileSync(join(IMAGES, name), join(dir, 'images', name));
  const [header, ...rows] = readFileSync(CSV, 'utf8').trim().split(/\r?\n/);
  const site = (i) => (i >= 200 ? 'harbour' : i % 2 ? 'hill' : 'town');
  const time = (i) => `2026-03-01T${String(8 + Math.floor(i / 60)).padStart(2, '0')}:${String(i % 60).padStart(2, '0')}:00Z`;
  const lines = rows.map((r, i) => `${r},${site(i)},${'ABC'[i % 3]},${time(i)}`);
  const path = join(dir, 'labels.csv');
  writeFileSync(path, `${header},site,camera,taken_at\n${lines.join('\n')}\n`);
  return { dir, path };
}

// From row 200 on (the harbour's rows) the mock answers the label at 0.4 instead of 0.9.
const DROP = ['--mock-accuracy', '0.9', '--mock-accuracy-drop-at', '200:0.4'];

const pct = (x) => `${(x * 100).toFixed(1)}%`;
const span = (i) => `${(i.low * 100).toFixed(1)}–${(i.high * 100).toFixed(1)}%`;
const pts = (g) => `${Math.abs(g * 100).toFixed(1) === '0.0' ? '±' : g < 0 ? '−' : '+'}${Math.abs(g * 100).toFixed(1)} pts`;

/** What the slices table should show for a column of the summary, in its order. */
const expectedSlices = (column) => column.values.map((v) => ({
  value: v.value, rows: String(v.rows), agreement: pct(v.agreementRate) + span(v.agreementInterval), gap: pts(v.gap),
  kappa: v.kappa.value.toFixed(3), failed: `${pct(v.failureShare)}${v.failed} of ${v.rows}`,
}));

/** The slices table as drawn: its column and each value's cells. */
function slicesShown(page) {
  return page.evaluate(() => {
    const table = document.querySelector('.sx-slices');
    if (!table) return null;
    const cells = (tr) => [...tr.children].map((c) => c.textContent);
    return {
      column: table.dataset.column,
      run: cells(table.querySelector('tr.sx-slice-run')),
      values: [...table.querySelectorAll('tbody tr[data-value]')].map((tr) => {
        const c = [...tr.children];
        return {
          value: tr.dataset.value, rows: c[1].textContent, agreement: c[2].textContent, gap: c[4].textContent,
          kappa: c[5].firstChild.textContent, failed: c[6].textContent, below: tr.classList.contains('sx-below'),
          dot: c[3].querySelector('.sx-sbar-dot')?.getBoundingClientRect().left,
          runLine: c[3].querySelector('.sx-sbar-run')?.getBoundingClientRect().left,
        };
      }),
    };
  });
}

const without = (values, ...keys) => values.map((v) => Object.fromEntries(Object.entries(v).filter(([k]) => !keys.includes(k))));

test('slices: a CSV column\'s values worst first with the summary\'s figures, the run as reference, the column chosen and kept in the URL, at 1,280 and 390 px', async () => {
  const csv = siteCsv();
  const r = spawnSync(BIN, [csv.path, '--out-dir', csv.dir, '--seed', '42', '--mock-latency-ms', '2', ...DROP],
    { encoding: 'utf8', env: { ...process.env, OPENAI_API_KEY: '' } });
  assert.ok(r.status === 0 || r.status === 1, r.stderr);
  const names = readdirSync(csv.dir);
  const summary = JSON.parse(readFileSync(join(csv.dir, names.find((n) => /^shadow-mode-batch-\d.*\.json$/.test(n))), 'utf8'));
  const report = join(csv.dir, names.find((n) => n.endsWith('.html')));
  const bySite = summary.slices.find((c) => c.column === 'site');
  const byCamera = summary.slices.find((c) => c.column === 'camera');
  const run = summary.evaluation;
  // The data the view is checked against: the harbour's fall shows, and its
  // interval lies wholly below the run's agreement.
  assert.equal(bySite.values[0].value, 'harbour', JSON.stringify(bySite));
  assert.ok(bySite.values[0].agreementInterval.high < run.agreementRate, JSON.stringify(bySite.values[0]));
  assert.equal(summary.slices.find((c) => c.column === 'taken_at').tooManyValues, true);

  for (const viewport of VIEWPORTS) {
    const where = `${viewport.width} px`;
    let page = await openReport(report, viewport);
    const section = await page.$eval('.sx-slices-section', (s) => ({
      options: [...s.querySelectorAll('select[name=slice] option')].map((o) => o.textContent),
      chosen: s.querySelector('select[name=slice]').value,
      notSliced: s.querySelector('.sx-notsliced').textContent,
    }));
    assert.deepEqual(section.options, ['site (3 values)', 'camera (3 values)'], where);
    assert.equal(section.chosen, 'site', where);
    assert.match(section.notSliced, /^Not sliced: taken_at — it has more than 50 distinct values/, where);

    // The site's values, worst first, each figure the summary's.
    let shown = await slicesShown(page);
    assert.equal(shown.column, 'site', where);
    assert.deepEqual(without(shown.values, 'below', 'dot', 'runLine'), expectedSlices(bySite), where);
    const gaps = bySite.values.map((v) => v.gap);
    assert.deepEqual(gaps, [...gaps].sort((a, b) => a - b), `${where}: worst first`);
    // The run as reference: its agreement and interval; the harbour marked below it, its dot left of the run's line.
    assert.equal(shown.run[0], 'whole run300 rows', where);
    assert.equal(shown.run[2], pct(run.agreementRate) + span(run.agreementInterval), where);
    assert.deepEqual(shown.values.map((v) => v.below), bySite.values.map((v) => v.agreementInterval.high < run.agreementRate), where);
    assert.ok(shown.values[0].dot < shown.values[0].runLine, `${where}: the harbour's dot left of the run's agreement`);
    assert.ok(shown.values.at(-1).dot > shown.values.at(-1).runLine, `${where}: the best value's dot right of it`);
    // It fits: no sideways scroll at either width.
    const fits = await page.$eval('.sx-slices', (t) => t.parentElement.scrollWidth <= t.parentElement.clientWidth + 1);
    assert.ok(fits, `${where}: the slices table fits`);
    assert.equal(await page.evaluate(() => document.documentElement.scrollWidth > innerWidth), false, where);

    // Another column, kept in the URL fragment: a reload (or the link) opens it again.
    await page.selectOption('.sx-slices-section select[name=slice]', 'camera');
    shown = await slicesShown(page);
    assert.equal(shown.column, 'camera', where);
    assert.deepEqual(without(shown.values, 'below', 'dot', 'runLine'), expectedSlices(byCamera), where);
    const hash = await page.evaluate(() => location.hash);
    assert.match(hash, /(^#|&)slice=camera(&|$)/, where);
    await page.context().close();
    page = await openReport(report, viewport, hash);
    assert.equal(await page.inputValue('.sx-slices-section select[name=slice]'), 'camera', where);
    assert.equal((await slicesShown(page)).column, 'camera', where);
    assert.deepEqual(page.attempted, [], where);
    assert.deepEqual(page.errors, [], where);
    await page.context().close();
  }
});

test('the page: a run of a CSV with a site column ends with its slices, and a row opens with the answer and tokens the run kept', async () => {
  const csv = siteCsv();
  const page = await openPage(await serve(['--latency-ms', '0', '--accuracy-drop-at', '200:0.4']), { width: 1280, height: 900 });
  await chooseData(page, { csv: csv.path });
  await page.click('#start');
  await waitForEnd(page);
  await page.waitForFunction(() => document.querySelector('.sx-status')?.textContent.startsWith('completed'));
  const { summary, lines } = await page.evaluate(() => ({ summary: window.__shadow.summary, lines: window.__shadow.lines }));
  const bySite = summary.slices.find((c) => c.column === 'site');
  assert.equal(bySite.values[0].value, 'harbour', JSON.stringify(bySite));
  await page.waitForSelector('.sx-slices');
  const shown = await slicesShown(page);
  assert.equal(shown.column, 'site');
  assert.deepEqual(without(shown.values, 'below', 'dot', 'runLine'), expectedSlices(bySite));

  // The first disagreement: its view shows what the results line holds, and the image from the chosen folder.
  const results = lines.map((l) => JSON.parse(l));
  await page.click('.sx-results tr.sx-disagree td.sx-label');
  await page.waitForSelector('dialog.sx-rowview[open]');
  await page.waitForFunction(() => document.querySelector('dialog.sx-rowview img')?.complete);
  const view = await rowView(page);
  const row = Number(view.heading.match(/^Row (\d+)/)[1]) - 1;
  const line = results.find((l) => l.row === row);
  assert.ok(line && line.agreement === false, JSON.stringify(line));
  assert.equal(view.answer.text, line.answer);
  assert.equal(view.facts.Tokens, line.usage.totalTokens.toLocaleString('en-US'));
  assert.equal(view.facts['Model\'s label'], line.prediction);
  assert.ok(view.image.loaded, 'the image from the chosen folder');
  await page.keyboard.press('Escape');
  assert.equal(await rowView(page), null);
  assert.deepEqual(page.errors, []);
  await page.context().close();
});

test('the page during a run: a row\'s view stays open while the explorer takes in new rows, and closes back onto its row', async () => {
  const page = await openPage(await serve(['--latency-ms', '60']), { width: 1280, height: 900 });
  await chooseData(page);
  await page.click('#start');
  await page.waitForSelector('.sx-results tr[data-row="0"] .sx-open', { timeout: 30_000 });
  const before = await page.textContent('.sx-results caption');
  await page.click('.sx-results tr[data-row="0"] .sx-open');
  await page.waitForSelector('dialog.sx-rowview[open]');
  const heading = (await rowView(page)).heading;
  assert.equal(heading, 'Row 1 · CSV line 2');
  // The explorer is drawn again with more rows; the view stays on its row and says its place.
  await page.waitForFunction((b) => document.querySelector('.sx-results caption').textContent !== b, before, { timeout: 30_000 });
  let view = await rowView(page);
  assert.ok(view, 'still open after an update');
  assert.equal(view.heading, heading);
  await waitForEnd(page);
  await page.waitForFunction(() => document.querySelector('.sx-status')?.textContent.startsWith('completed'));
  view = await rowView(page);
  assert.ok(view, 'still open at the end of the run');
  assert.equal(view.heading, heading);
  assert.equal(await page.textContent('dialog.sx-rowview .sx-rv-pos'), '1 of 300 shown');
  // The button that opened it was drawn again: focus goes to the row's new one.
  await page.keyboard.press('Escape');
  assert.deepEqual(await focused(page), { cls: 'sx-open', row: '0' });
  assert.deepEqual(page.errors, []);
  await page.context().close();
});
