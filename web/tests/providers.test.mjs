// The providers the page offers (issue 13 item 6): each one runs a real run against
// the mock endpoint of `shadow-batch web` speaking its dialect, with the key in
// memory only and the headers the core says a page adds; an endpoint known not to
// answer a page's calls (Azure OpenAI's own hosts) is refused before Start with what
// to do instead; an endpoint that answers but does not allow calls from a page
// (no CORS) is told apart from one that does not answer at all, after the run.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import {
  launch, shutdown, serve, openPage, chooseData, fill, fieldProblem, waitForEnd, results, rowsOf, writeCsv,
} from './harness.mjs';

before(launch);
after(shutdown);

const KEY = 'page-key-5d1c';

const stats = async (url) => (await fetch(`${url}/stats`)).json();

// How each provider is set up in the form to reach the mock at `url`.
const PROVIDERS = [
  { kind: 'openai', fields: (url) => ({ 'base-url': `${url}/v1`, model: 'gpt-test' }) },
  { kind: 'anthropic', fields: (url) => ({ 'base-url': url, model: 'claude-test' }) },
  { kind: 'gemini', fields: (url) => ({ 'base-url': `${url}/v1beta`, model: 'gemini-test' }) },
  { kind: 'azure', fields: (url) => ({ 'base-url': url, deployment: 'vision-dep', 'api-version': '2024-10-21' }) },
  { kind: 'azure', fields: (url) => ({ 'base-url': url, deployment: 'vision-dep' }), what: 'v1 path' },
];

for (const { kind, fields, what } of PROVIDERS) {
  test(`a run with ${kind}${what ? ` (${what})` : ''} against the mock's ${kind} dialect completes, the key in its header`, async () => {
    const url = await serve(['--latency-ms', '0', '--require-key', KEY]);
    const page = await openPage(url);
    await chooseData(page);
    await page.check(`input[name=endpoint][value=${kind}]`);
    // The form shows the core's defaults for the provider, and says whether this
    // page may call its public API.
    const shown = await page.evaluate(async (k) => {
      const { defaultProvider } = await import('./pkg/shadow_wasm.js');
      return {
        defaults: defaultProvider(k),
        baseUrl: document.getElementById('base-url').value,
        note: document.getElementById('endpoint-note').textContent,
      };
    }, kind);
    assert.equal(shown.baseUrl, shown.defaults.baseUrl);
    // (Azure has no default resource: the note waits for one.)
    if (kind !== 'azure') assert.match(shown.note, /answers calls from a browser page \(CORS\)/);
    if (kind === 'anthropic') assert.match(shown.note, /anthropic-dangerous-direct-browser-access: true/);

    await fill(page, { ...fields(url), 'api-key': KEY });
    assert.match(await page.textContent('#endpoint-note'), /must allow calls from this page \(CORS\)/);
    await page.click('#start');
    assert.match(await waitForEnd(page), /^completed/);
    const { summary, lines } = await results(page);
    assert.equal(summary.config.providerLabel, kind);
    assert.equal(summary.config.provider.kind, kind);
    assert.equal(summary.statistics.total, 300);
    assert.ok(summary.statistics.successful >= 295, JSON.stringify(summary.statistics));
    assert.ok(summary.evaluation.agreements > 200, 'the mock knew the labels');
    const rows = rowsOf(lines);
    assert.equal(new Set(rows).size, 300);
    assert.equal(rows.length, 300);
    const s = await stats(url);
    assert.equal(s.unauthorized, 0, `the key (and Anthropic's opt-in) in the dialect's headers: ${JSON.stringify(s)}`);
    assert.equal(s.badRequests, 0, JSON.stringify(s));
    // The key is in no stored run and no result.
    const stored = await page.evaluate(async () => JSON.stringify(await window.__shadow.store.runs()));
    assert.ok(!stored.includes(KEY), 'the key was stored');
    assert.ok(!lines.join('').includes(KEY));
    assert.deepEqual(page.errors, []);
    await page.context().close();
  });
}

test('each provider keeps its own settings and key while another is chosen', async () => {
  const url = await serve(['--latency-ms', '0']);
  const page = await openPage(url);
  await page.check('input[name=endpoint][value=anthropic]');
  await fill(page, { model: 'claude-mine', 'api-key': 'a-key' });
  await page.check('input[name=endpoint][value=gemini]');
  assert.equal(await page.inputValue('#api-key'), '', 'a key is for its provider only');
  assert.notEqual(await page.inputValue('#model'), 'claude-mine');
  await page.check('input[name=endpoint][value=azure]');
  assert.equal(await page.isHidden('#model'), true, 'Azure names a deployment instead');
  assert.equal(await page.isVisible('#deployment'), true);
  assert.match(await page.textContent('label:has(#base-url)'), /Resource URL/);
  await page.check('input[name=endpoint][value=anthropic]');
  assert.equal(await page.inputValue('#model'), 'claude-mine');
  assert.equal(await page.inputValue('#api-key'), 'a-key');
  assert.deepEqual(page.errors, []);
  await page.context().close();
});

test('Azure OpenAI at its own host is refused before Start, with the CLI or a proxy to use instead', async () => {
  const url = await serve(['--latency-ms', '0']);
  const page = await openPage(url);
  await chooseData(page);
  await page.check('input[name=endpoint][value=azure]');
  await fill(page, { 'base-url': 'https://my-resource.openai.azure.com', deployment: 'gpt-4o', 'api-key': 'k' });
  const note = await page.textContent('#endpoint-note');
  assert.match(note, /my-resource\.openai\.azure\.com does not answer calls from a browser page \(no CORS\)/);
  await page.click('#start');
  await page.waitForSelector('#base-url[aria-invalid=true]');
  const problem = await fieldProblem(page, 'base-url');
  assert.match(problem.text, /does not answer calls from a browser page/);
  assert.match(problem.text, /--provider azure/);
  assert.match(problem.text, /proxy that adds CORS/);
  assert.equal(await page.evaluate(() => window.__shadow.runner), null, 'a run started');
  assert.equal(await page.isHidden('#live'), true);
  assert.equal((await stats(url)).requests, 0);
  // A proxy's URL (here the mock) is taken.
  await fill(page, { 'base-url': url });
  assert.equal((await fieldProblem(page, 'base-url')).invalid, false);
  await page.click('#start');
  assert.match(await waitForEnd(page), /^completed/);
  assert.deepEqual(page.errors, []);
  await page.context().close();
});

test('an endpoint that answers but not to a page (no CORS) is said so; one that does not answer, not', async () => {
  // A server that answers everything, preflights included, without CORS headers.
  const plain = createServer((req, res) => {
    req.resume();
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end('{}');
  });
  await new Promise((r) => plain.listen(0, '127.0.0.1', r));
  const plainUrl = `http://127.0.0.1:${plain.address().port}/v1`;
  const nothing = await new Promise((res) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => res(`http://127.0.0.1:${p}/v1`)); });
  });
  const csv = writeCsv('urls.csv', ['image,label', ...Array.from({ length: 30 }, (_, i) => `https://example.test/${i}.png,${i % 2 ? 'cat' : 'dog'}`)]);
  const url = await serve(['--latency-ms', '0']);
  const page = await openPage(url);
  await page.setInputFiles('#csv', csv);
  await page.check('input[name=endpoint][value=openai]');

  const runAgainst = async (base) => {
    await fill(page, { 'base-url': base, 'api-key': 'some-key' });
    const last = await page.evaluate(() => window.__shadow.runId);
    await page.click('#start');
    // This run ended, and the page has tried the endpoint without CORS.
    await page.waitForFunction((old) => window.__shadow.runId !== old && window.__shadow.probed === window.__shadow.runId
      && document.querySelector('#status[data-final]'), last, { timeout: 60_000 });
    return {
      status: await page.textContent('#status'),
      problem: await fieldProblem(page, 'base-url'),
      offer: await page.textContent('#resume-offer'),
    };
  };

  let { status, problem, offer } = await runAgainst(plainUrl);
  assert.match(status, /aborted/);
  // The stored run's offer says the same.
  assert.match(offer, /does not allow them \(CORS\)/);
  assert.equal(problem.invalid, true);
  assert.match(problem.text, /answers, but not to calls from a browser page/);
  assert.match(problem.text, /\(CORS\)/);
  assert.match(problem.text, /CLI/);
  assert.match(problem.text, /proxy/);

  ({ status, problem, offer } = await runAgainst(nothing));
  assert.match(status, /aborted/);
  assert.equal(problem.invalid, true);
  assert.match(problem.text, /Base URL/);
  assert.doesNotMatch(problem.text, /answers, but not/);
  assert.match(offer, /Check the Base URL/);
  assert.doesNotMatch(offer, /CORS/);
  plain.close();
  assert.deepEqual(page.errors, []);
  await page.context().close();
});

test('a provider run cut by a reload resumes with its provider and settings; its key is asked for again', async () => {
  const url = await serve(['--latency-ms', '200', '--error-rate', '0', '--require-key', KEY]);
  const page = await openPage(url);
  await chooseData(page);
  await page.check('input[name=endpoint][value=gemini]');
  await fill(page, { 'base-url': `${url}/v1beta`, model: 'gemini-mine', 'api-key': KEY });
  await page.click('#start');
  await page.waitForFunction(() => window.__shadow.lines.length >= 20, null, { timeout: 30_000 });
  await page.reload();
  await page.waitForFunction(() => window.__shadow?.ready === true);
  await chooseData(page, { csv: null });
  const resume = page.getByRole('button', { name: 'Resume it', exact: true });
  await resume.click();
  // The form shows the stored run's provider and settings; the key was never kept.
  await page.waitForSelector('#api-key[aria-invalid=true]');
  assert.equal(await page.isChecked('input[name=endpoint][value=gemini]'), true);
  assert.equal(await page.inputValue('#model'), 'gemini-mine');
  assert.equal(await page.inputValue('#base-url'), `${url}/v1beta`);
  assert.match((await fieldProblem(page, 'api-key')).text, /API key of Gemini's API/);
  await fill(page, { 'api-key': KEY });
  await resume.click();
  assert.match(await waitForEnd(page), /^completed/);
  const { summary, lines } = await results(page);
  assert.equal(summary.config.providerLabel, 'gemini');
  assert.equal(summary.config.provider.model, 'gemini-mine');
  assert.ok(summary.statistics.resumedItems >= 20);
  assert.equal(new Set(rowsOf(lines)).size, 300);
  assert.equal(rowsOf(lines).length, 300);
  assert.equal((await stats(url)).unauthorized, 0);
  assert.deepEqual(page.errors, []);
  await page.context().close();
});
