// Working through disagreements (issue 21, item 10), in the explorer the page and
// the CLI's HTML report share, at 1,280 and 390 px: the per-label table sorted by
// any column and ended by scikit-learn's accuracy, macro and weighted rows; the
// confusion matrix as row shares on a toggle; the rows the filters show downloaded
// as CSV; the view kept in the URL fragment so that a link opens it again.
//
// The CLI binary is $SHADOW_BATCH_BIN, else target/debug/shadow-batch under
// $CARGO_TARGET_DIR (relative to the repository root) or the repository's target/.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

import { BIN, launch, newPage, serve, shutdown } from './harness.mjs';

before(launch);
after(shutdown);

const VIEWPORTS = [{ width: 1280, height: 900 }, { width: 390, height: 844 }];
const RUN_ID = '2025-01-24T10-30-00-000Z';

// 20 compared rows (labels bird, cat, dog, fox; the model also says "owl", a
// label no row has) and 2 failed rows, whose texts try a spreadsheet formula,
// quotes, commas and a line break.
const Y_TRUE = [...Array(7).fill('cat'), ...Array(6).fill('dog'), ...Array(4).fill('bird'), ...Array(3).fill('fox')];
const Y_PRED = [...Array(5).fill('cat'), 'dog', 'owl', ...Array(4).fill('dog'), 'cat', 'cat', 'bird', 'bird', 'cat', 'fox', 'fox', 'dog', 'owl'];
const FORMULA_IMAGE = '=HYPERLINK("http://evil.test","x").png';
const FAILED = [
  { label: 'cat', image: FORMULA_IMAGE, error: '@SUM(1+1), "quoted"\nsecond line', errorKind: 'http', httpStatus: 500, attempts: 3 },
  { label: 'dog', image: '+plus,comma.png', error: '-1 tokens left', errorKind: 'transport', attempts: 2 },
];

function knownResults() {
  const lines = Y_TRUE.map((label, row) => ({
    row, line: row + 2, image: `images/digit-${String(row).padStart(4, '0')}.png`, label, prediction: Y_PRED[row],
    agreement: Y_PRED[row] === label, status: 'success', attempts: 1, latencyMs: 100 + ((row * 37) % 200),
    error: null, finishedAt: '2025-01-24T10:30:00.000Z', ...(row === 6 ? { answer: '-owl, I think' } : {}),
  }));
  FAILED.forEach((f, k) => lines.push({
    row: 20 + k, line: 22 + k, image: f.image, label: f.label, prediction: null, agreement: null, status: 'failed',
    attempts: f.attempts, latencyMs: null, error: f.error, errorKind: f.errorKind, ...(f.httpStatus ? { httpStatus: f.httpStatus } : {}),
    finishedAt: '2025-01-24T10:30:00.000Z',
  }));
  return lines.map((l) => JSON.stringify(l)).join('\n') + '\n';
}

/** The known results file, and the CLI's report of it (`shadow-batch report`). */
function knownRun() {
  const dir = mkdtempSync(join(tmpdir(), 'shadow-disagree-'));
  const results = join(dir, `shadow-mode-batch-results-${RUN_ID}.jsonl`);
  writeFileSync(results, knownResults());
  const r = spawnSync(BIN, ['report', results], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return { dir, results, report: join(dir, `shadow-mode-batch-report-${RUN_ID}.html`) };
}

let known;
before(() => { known = knownRun(); });

/** Opens the report from disk (at `fragment`, if given) with every network request refused. */
async function openReport(viewport, fragment = '') {
  const { context, page } = await newPage(viewport);
  const attempted = [];
  await context.route('**/*', (route) => {
    if (route.request().url().startsWith('file:')) return route.continue();
    attempted.push(route.request().url());
    return route.abort();
  });
  await page.goto(pathToFileURL(known.report).href + fragment);
  await page.waitForSelector('#explorer[data-ready]');
  page.attempted = attempted;
  return page;
}

/** The per-label table's body: label and the text of each cell. */
const perLabelRows = (page) => page.$$eval('.sx-perlabel tbody tr', (trs) => trs.map((tr) => tr.dataset.label));
const footRows = (page) => page.$$eval('.sx-perlabel tfoot tr', (trs) => trs.map((tr) => [...tr.cells].map((c) => c.textContent)));

/**
 * scikit-learn 1.9.1 for the same rows (the failed rows are not compared):
 *
 *   from sklearn.metrics import classification_report
 *   y_true = ["cat"]*7 + ["dog"]*6 + ["bird"]*4 + ["fox"]*3
 *   y_pred = ["cat"]*5 + ["dog", "owl"] + ["dog"]*4 + ["cat"]*2 + ["bird"]*2 + ["cat", "fox"] + ["fox", "dog", "owl"]
 *   print(classification_report(y_true, y_pred, zero_division=0, digits=3))
 *
 *                 precision    recall  f1-score   support
 *           bird      1.000     0.500     0.667         4
 *            cat      0.625     0.714     0.667         7
 *            dog      0.667     0.667     0.667         6
 *            fox      0.500     0.333     0.400         3
 *            owl      0.000     0.000     0.000         0
 *       accuracy                          0.600        20
 *      macro avg      0.558     0.443     0.480        20
 *   weighted avg      0.694     0.600     0.627        20
 *
 * (The explorer shows owl's undefined recall and F1 as "–"; like scikit-learn's
 * zero_division=0 the averages count them as 0.)
 */
const SKLEARN = {
  perLabel: {
    bird: ['1.000', '0.500', '0.667', '4'], cat: ['0.625', '0.714', '0.667', '7'], dog: ['0.667', '0.667', '0.667', '6'],
    fox: ['0.500', '0.333', '0.400', '3'], owl: ['0.000', '–', '–', '0'],
  },
  // label, support, predicted, correct, precision, recall, F1 (predicted and correct empty)
  foot: [
    ['accuracy', '20', '', '', '', '', '0.600'],
    ['macro avg', '20', '', '', '0.558', '0.443', '0.480'],
    ['weighted avg', '20', '', '', '0.694', '0.600', '0.627'],
  ],
  /**
   *   from sklearn.metrics import confusion_matrix
   *   labels = ["bird", "cat", "dog", "fox", "owl"]
   *   confusion_matrix(y_true, y_pred, labels=labels, normalize="true").round(6)
   */
  shares: {
    bird: [0.5, 0.25, 0, 0.25, 0], cat: [0, 0.714286, 0.142857, 0, 0.142857], dog: [0, 0.333333, 0.666667, 0, 0],
    fox: [0, 0, 0.333333, 0.333333, 0.333333], owl: [0, 0, 0, 0, 0],
  },
  order: ['bird', 'cat', 'dog', 'fox', 'owl'],
};

test('per-label table: scikit-learn\'s accuracy, macro and weighted rows, sortable by any column with aria-sort, at 1,280 and 390 px', async () => {
  for (const viewport of VIEWPORTS) {
    const where = `${viewport.width} px`;
    const page = await openReport(viewport);
    // Each label's precision, recall, F1 and support are scikit-learn's.
    const cells = await page.$$eval('.sx-perlabel tbody tr', (trs) => Object.fromEntries(trs.map((tr) => [tr.dataset.label,
      [4, 5, 6, 1].map((i) => tr.cells[i].firstChild.textContent)])));
    assert.deepEqual(cells, SKLEARN.perLabel, where);
    assert.deepEqual((await footRows(page)).map((r) => r.map((c) => c.trim())), SKLEARN.foot, where);
    assert.deepEqual(await page.$$eval('.sx-perlabel tfoot th', (ths) => ths.map((th) => th.scope)), ['row', 'row', 'row'], where);
    // The table, its summary rows too, fits its box (no sideways scrolling) at both widths.
    assert.ok(await page.$eval('.sx-perlabel', (t) => t.scrollWidth <= t.parentElement.clientWidth), `${where}: the table fits`);

    // Every visible column sorts: ascending, then descending, said by aria-sort on
    // its header only; a missing value last either way; the summary rows stay last.
    const visible = await page.$$eval('.sx-perlabel thead th', (ths) => ths.filter((th) => th.offsetParent).map((th) => th.dataset.key));
    assert.deepEqual(visible, viewport.width > 500
      ? ['label', 'support', 'predicted', 'correct', 'precision', 'recall', 'f1']
      : ['label', 'support', 'precision', 'recall', 'f1'], where);
    // Ascending, then descending; ties keep the evaluation's order either way.
    const want = {
      label: [['bird', 'cat', 'dog', 'fox', 'owl'], ['owl', 'fox', 'dog', 'cat', 'bird']],
      support: [['owl', 'fox', 'bird', 'dog', 'cat'], ['cat', 'dog', 'bird', 'fox', 'owl']],
      predicted: [['bird', 'fox', 'owl', 'dog', 'cat'], ['cat', 'dog', 'bird', 'fox', 'owl']],
      correct: [['owl', 'fox', 'bird', 'dog', 'cat'], ['cat', 'dog', 'bird', 'fox', 'owl']],
      precision: [['owl', 'fox', 'cat', 'dog', 'bird'], ['bird', 'dog', 'cat', 'fox', 'owl']],
      recall: [['fox', 'bird', 'dog', 'cat', 'owl'], ['cat', 'dog', 'bird', 'fox', 'owl']],
      f1: [['fox', 'bird', 'cat', 'dog', 'owl'], ['bird', 'cat', 'dog', 'fox', 'owl']],
    };
    for (const key of visible) {
      await page.click(`.sx-perlabel th[data-key=${key}] button`);
      const sorts = await page.$$eval('.sx-perlabel thead th', (ths) => ths.map((th) => [th.dataset.key, th.getAttribute('aria-sort')]));
      assert.deepEqual(sorts.filter(([, s]) => s), [[key, 'ascending']], `${where}: ${key}`);
      assert.deepEqual(await perLabelRows(page), want[key][0], `${where}: ${key} ascending`);
      await page.click(`.sx-perlabel th[data-key=${key}] button`);
      assert.equal(await page.getAttribute(`.sx-perlabel th[data-key=${key}]`, 'aria-sort'), 'descending', where);
      assert.deepEqual(await perLabelRows(page), want[key][1], `${where}: ${key} descending`);
      assert.deepEqual((await footRows(page)).map((r) => r[0]), ['accuracy', 'macro avg', 'weighted avg'], where);
    }
    // A label's button still lists its rows after sorting.
    await page.click('.sx-perlabel tbody tr[data-label=fox] th button');
    assert.match(await page.textContent('.sx-results caption'), /of 3 \(filtered from 22\)/, where);
    assert.deepEqual(page.attempted, [], where);
    assert.deepEqual(page.errors, [], where);
    await page.context().close();
  }
});

/** The matrix as shown: row label -> {column label -> cell text}, and the shares. */
function readMatrix(page) {
  return page.evaluate(() => {
    const table = document.querySelector('.sx-matrix');
    const cols = [...table.tHead.rows[0].cells].slice(1).filter((c) => !c.classList.contains('sx-failcol')).map((c) => c.textContent);
    const rows = {};
    const shares = {};
    for (const tr of table.tBodies[0].rows) {
      const label = tr.cells[0].textContent;
      const buttons = [...tr.querySelectorAll('td:not(.sx-failcol) button')];
      rows[label] = Object.fromEntries(buttons.map((b, j) => [cols[j], b.textContent]));
      shares[label] = Object.fromEntries(buttons.map((b, j) => [cols[j], b.dataset.share === undefined ? null : Number(b.dataset.share)]));
    }
    return { rows, shares, caption: table.caption.textContent, checked: document.querySelector('.sx-matrix-section input[name=normalise]').checked };
  });
}

test('confusion matrix: counts by default, row shares on the toggle (each row sums to 1, as scikit-learn\'s normalize="true"), at 1,280 and 390 px', async () => {
  for (const viewport of VIEWPORTS) {
    const where = `${viewport.width} px`;
    const page = await openReport(viewport);
    const counts = await readMatrix(page);
    assert.equal(counts.checked, false, `${where}: counts by default`);
    assert.deepEqual(counts.rows.cat, { bird: '·', cat: '5', dog: '1', fox: '·', owl: '1' }, where);
    assert.ok(Object.values(counts.shares).every((r) => Object.values(r).every((v) => v === null)), where);

    await page.check('.sx-matrix-section input[name=normalise]');
    const shares = await readMatrix(page);
    assert.equal(shares.checked, true, where);
    assert.match(shares.caption, /shares of each label's row/, where);
    for (const label of SKLEARN.order) {
      const row = SKLEARN.order.map((col) => shares.shares[label][col]);
      const sum = row.reduce((a, b) => a + b, 0);
      if (label === 'owl') {
        assert.equal(sum, 0, `${where}: a label no row has has no shares`);
        continue;
      }
      assert.ok(Math.abs(sum - 1) < 1e-12, `${where}: ${label}'s row sums to ${sum}`);
      row.forEach((v, j) => assert.ok(Math.abs(v - SKLEARN.shares[label][j]) < 1e-6, `${where}: ${label}/${SKLEARN.order[j]} ${v}`));
      // Shown with two decimals; an empty cell as a dot.
      SKLEARN.order.forEach((col, j) => {
        const want = SKLEARN.shares[label][j] ? SKLEARN.shares[label][j].toFixed(2) : '·';
        assert.equal(shares.rows[label][col], want, `${where}: ${label}/${col}`);
      });
    }
    // A cell still lists its rows; the toggle stays; off again shows the counts.
    await page.click('.sx-matrix button[data-label][data-predicted][aria-label^="14.3% of the 7 rows labelled cat predicted owl"]');
    assert.match(await page.textContent('.sx-results caption'), /of 1 \(filtered from 22\)/, where);
    await page.uncheck('.sx-matrix-section input[name=normalise]');
    assert.deepEqual((await readMatrix(page)).rows, counts.rows, where);
    // The matrix still fits its box at phone width.
    assert.ok(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth), `${where}: page width`);
    assert.deepEqual(page.errors, [], where);
    await page.context().close();
  }
});

/** A minimal RFC 4180 reader, for checking the download: rows of fields. */
function parseCsv(text) {
  const rows = [];
  let row = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') { field += '"'; i++; } else if (c === '"') quoted = false; else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') { row.push(field); field = ''; } else if (c === '\r' && text[i + 1] === '\n') { row.push(field); rows.push(row); row = []; field = ''; i++; } else field += c;
  }
  if (field || row.length) { row.push(field); rows.push(row); }
  return rows;
}

test('the rows the filters show download as CSV: a header, the rows in the order shown, quoted, formulas kept as text, at 1,280 and 390 px', async () => {
  for (const viewport of VIEWPORTS) {
    const where = `${viewport.width} px`;
    const page = await openReport(viewport);
    // Failures, the latest row first (the table is sorted by row: one click reverses it).
    await page.check('.sx-filters input[name=failures]');
    await page.click('.sx-results th[data-key=row] button');
    assert.equal(await page.getAttribute('.sx-results th[data-key=row]', 'aria-sort'), 'descending', where);
    assert.equal(await page.textContent('.sx-csv'), 'Download these 2 rows (CSV)', where);
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('.sx-csv')]);
    assert.equal(download.suggestedFilename(), `shadow-mode-batch-rows-${RUN_ID}.csv`, where);
    const text = readFileSync(await download.path(), 'utf8');
    // The exact text: quoted where a field holds a quote, a comma or a line break;
    // a field that starts with = + - @ starts with ' (a spreadsheet keeps it text).
    assert.equal(text, [
      'row,line,id,image,label,prediction,agreement,status,attempts,latencyMs,errorKind,httpStatus,tokens,costUsd,error,answer',
      "21,23,,\"'+plus,comma.png\",dog,,,failed,2,,transport,,,,'-1 tokens left,",
      '20,22,,"\'=HYPERLINK(""http://evil.test"",""x"").png",cat,,,failed,3,,http,500,,,"\'@SUM(1+1), ""quoted""\nsecond line",',
      '',
    ].join('\r\n'), where);
    const rows = parseCsv(text);
    assert.equal(rows[2][3], `'${FORMULA_IMAGE}`, where);
    assert.equal(rows[2][14], `'${FAILED[0].error}`, where);

    // Another filter, another download: the disagreements of label cat, all columns.
    await page.uncheck('.sx-filters input[name=failures]');
    await page.check('.sx-filters input[name=disagreements]');
    await page.selectOption('.sx-filters select[name=label]', { label: 'cat' });
    const [second] = await Promise.all([page.waitForEvent('download'), page.click('.sx-csv')]);
    const got = parseCsv(readFileSync(await second.path(), 'utf8'));
    assert.deepEqual(got.slice(1).map((r) => [r[0], r[4], r[5], r[6], r[7]]), [
      ['6', 'cat', 'owl', 'false', 'success'], ['5', 'cat', 'dog', 'false', 'success'],
    ], where);
    assert.equal(got[1][3], 'images/digit-0006.png', where);
    assert.equal(got[1][15], "'-owl, I think", `${where}: the model's answer, formula-safe`);
    // Nothing matches: nothing to download.
    await page.fill('.sx-filters input[type=search]', 'no such row anywhere');
    await page.waitForFunction(() => document.querySelector('.sx-csv').disabled);
    assert.deepEqual(page.attempted, [], where);
    assert.deepEqual(page.errors, [], where);
    await page.context().close();
  }
});

/** The view as the page shows it: filters, both sorts, the toggle, the rows listed. */
function shownView(page) {
  return page.evaluate(() => {
    const q = (s) => document.querySelector(s);
    const sorted = (table) => [...document.querySelectorAll(`${table} thead th[aria-sort]`)].map((th) => `${th.dataset.key} ${th.getAttribute('aria-sort')}`);
    return {
      disagreements: q('.sx-filters input[name=disagreements]').checked,
      failures: q('.sx-filters input[name=failures]').checked,
      label: q('.sx-filters select[name=label]').selectedOptions[0].textContent,
      predicted: q('.sx-filters select[name=predicted]').selectedOptions[0].textContent,
      search: q('.sx-filters input[type=search]').value,
      resultsSort: sorted('.sx-results'),
      labelSort: sorted('.sx-perlabel'),
      labelOrder: [...document.querySelectorAll('.sx-perlabel tbody tr')].map((tr) => tr.dataset.label),
      normalise: q('.sx-matrix-section input[name=normalise]').checked,
      rows: [...document.querySelectorAll('.sx-results tbody tr[data-row]')].map((tr) => Number(tr.dataset.row)),
      caption: q('.sx-results caption').textContent,
    };
  });
}

/** Sets a view by hand: label cat, predicted not cat... through the controls. */
async function setView(page) {
  await page.selectOption('.sx-filters select[name=label]', { label: 'dog' });
  await page.check('.sx-filters input[name=disagreements]');
  await page.fill('.sx-filters input[type=search]', 'digit');
  await page.waitForFunction(() => document.querySelector('.sx-results caption').textContent.startsWith('Rows 1–2 of 2'));
  await page.click('.sx-results th[data-key=latency] button');
  await page.click('.sx-results th[data-key=latency] button');
  await page.click('.sx-perlabel th[data-key=recall] button');
  await page.click('.sx-perlabel th[data-key=recall] button');
  await page.check('.sx-matrix-section input[name=normalise]');
}

const WANT_VIEW = {
  disagreements: true, failures: false, label: 'dog', predicted: 'any', search: 'digit',
  resultsSort: ['latency descending'], labelSort: ['recall descending'], labelOrder: ['cat', 'dog', 'bird', 'fox', 'owl'],
  normalise: true, rows: [12, 11], caption: 'Rows 1–2 of 2 (filtered from 22)',
};

test('the view is kept in the URL fragment without history entries, and a link opens the same view (report and page), at 1,280 and 390 px', async () => {
  const url = await serve(['--latency-ms', '0']);
  for (const viewport of VIEWPORTS) {
    const where = `${viewport.width} px`;
    // The report from disk.
    const page = await openReport(viewport);
    const before = await page.evaluate(() => history.length);
    await setView(page);
    assert.deepEqual(await shownView(page), WANT_VIEW, where);
    const fragment = await page.evaluate(() => location.hash);
    assert.ok(fragment.length > 1, `${where}: the view is in the fragment`);
    const params = new URLSearchParams(fragment.slice(1));
    assert.equal(params.get('label'), 'dog', `${where}: labels by name: ${fragment}`);
    assert.equal(await page.evaluate(() => history.length), before, `${where}: no history entry per change`);
    const reopened = await openReport(viewport, fragment);
    assert.deepEqual(await shownView(reopened), WANT_VIEW, `${where}: the link opens the same view`);
    // Changing it back to the default view clears the fragment.
    await reopened.click('.sx-clear');
    await reopened.click('.sx-results th[data-key=row] button');
    await reopened.click('.sx-perlabel th[data-key=recall] button');
    await reopened.uncheck('.sx-matrix-section input[name=normalise]');
    const left = new URLSearchParams((await reopened.evaluate(() => location.hash)).slice(1));
    assert.deepEqual([...left.keys()], ['lsort'], `${where}: only the per-label sort is left`);
    assert.deepEqual(page.errors, [], where);
    assert.deepEqual(reopened.errors, [], where);
    await page.context().close();
    await reopened.context().close();

    // The page: the same run opened from its files, then the link in a new tab.
    const { page: app } = await newPage(viewport);
    await app.goto(url);
    await app.waitForFunction(() => window.__shadow && window.__shadow.ready);
    await app.click('#open-run summary');
    await app.setInputFiles('#open-run-files', known.results);
    await app.waitForSelector('#explorer[data-ready]');
    await setView(app);
    assert.deepEqual(await shownView(app), WANT_VIEW, `${where}: page`);
    const link = await app.evaluate(() => location.href);
    assert.ok(link.includes('#'), link);
    const { page: again } = await newPage(viewport);
    await again.goto(link);
    await again.waitForFunction(() => window.__shadow && window.__shadow.ready);
    await again.click('#open-run summary');
    await again.setInputFiles('#open-run-files', known.results);
    await again.waitForSelector('#explorer[data-ready]');
    assert.deepEqual(await shownView(again), WANT_VIEW, `${where}: the page's link opens the same view`);
    assert.deepEqual(app.errors, [], where);
    assert.deepEqual(again.errors, [], where);
    await app.context().close();
    await again.context().close();
  }
});
