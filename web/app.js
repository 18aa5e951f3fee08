// The page: settings in, progress and reports out. Everything the CSV or an
// endpoint supplies is shown with textContent, never as HTML.

import init, {
  ShadowRun, defaultConfig, settingBounds, fileStamp, formatDuration, mockModel, percent,
  progressFileName, resultsFileName, summaryFileName,
} from './pkg/shadow_wasm.js';
import { ImageFiles, Runner, now } from './runner.js';
import { Store } from './store.js';
import { ExplorerPanel } from './explorer-page.js';

const $ = (id) => document.getElementById(id);
const state = { runner: null, run: null, runId: null, lines: [], summary: null, csvName: null, started: 0, store: null };
window.__shadow = state; // for the browser tests

function showError(message) {
  $('error').textContent = message;
  $('error').hidden = !message;
}

// The settings form's fields: each reads one setting of the core's RunConfig and
// writes it back. The form starts from defaultConfig() and takes its limits from
// settingBounds(): the page keeps no defaults and no ranges.
const numeric = (setting, scale = 1) => ({
  setting,
  scale,
  get: (c) => c[setting] / scale,
  set: (c, v) => { c[setting] = Math.round(Number(v) * scale); },
});
const FIELDS = {
  'batch-size': numeric('batchSize'),
  delay: numeric('delayMs'),
  retries: numeric('maxRetries'),
  concurrency: numeric('concurrency'),
  timeout: numeric('requestTimeoutMs', 1000),
  seed: numeric('seed'),
  'base-url': { get: (c) => c.provider.baseUrl, set: (c, v) => { c.provider.baseUrl = v.trim(); } },
  model: { get: (c) => c.provider.model, set: (c, v) => { c.provider.model = v.trim(); } },
};

function fillForm(config) {
  const bounds = settingBounds();
  for (const [id, field] of Object.entries(FIELDS)) {
    $(id).value = field.get(config);
    const range = field.setting && bounds[field.setting];
    if (range) {
      $(id).min = range.min / field.scale;
      $(id).max = range.max / field.scale;
    }
  }
}

function settings(runId, csvName) {
  const mock = document.querySelector('input[name=endpoint]:checked').value === 'mock';
  const config = defaultConfig();
  for (const [id, field] of Object.entries(FIELDS)) field.set(config, $(id).value);
  Object.assign(config, { runId, csvPath: csvName });
  if (mock) {
    config.providerLabel = 'mock';
    config.provider.baseUrl = `${location.origin}/v1`;
    config.provider.model = mockModel();
  }
  return config;
}

// The core says why a run stopped (abortKind); the page says what to do, in its
// own terms: its fields and its resume offer, not the CLI's flags.
function nextStep(reason) {
  const resume = 'then start the run again.';
  switch (reason && reason.kind) {
    case 'unauthorized': return `Check the API key field, ${resume}`;
    case 'quotaExhausted': return `Add credit or raise the account's limit, ${resume}`;
    case 'modelNotFound': return `Put a model the endpoint serves in the Model field, ${resume}`;
    case 'endpointFailing': return `Check the Base URL and that the endpoint is up, ${resume}`;
    case 'endpointUnreachable': return `Check the Base URL and that the endpoint is up, ${resume}`;
    case 'endpointRefuses': return `Check the Base URL and the Model field against what the endpoint serves, ${resume}`;
    default: return `Fix the cause, ${resume}`;
  }
}

function download(name, text, type) {
  const a = document.createElement('a');
  a.href = URL.createObjectURL(new Blob([text], { type }));
  a.download = name;
  a.click();
  setTimeout(() => URL.revokeObjectURL(a.href), 1000);
}

function setRunning(running) {
  $('start').disabled = running;
  $('pause').disabled = !running;
  $('cancel').disabled = !running;
  for (const el of $('setup').querySelectorAll('fieldset')) el.disabled = running;
}

function tick() {
  const c = state.run.counts();
  const done = c.successful + c.failed;
  $('bar').max = Math.max(1, c.total);
  $('bar').value = done;
  const elapsed = now() - state.started;
  const rate = c.doneThisSession > 0 ? c.doneThisSession / (elapsed / 1000) : 0;
  const eta = rate > 0 ? ((c.total - done) / rate) * 1000 : 0;
  $('stats').textContent =
    `${done}/${c.total} done · ${rate.toFixed(1)} images/s · ETA ${formatDuration(eta)} · ` +
    `success ${percent(c.successful, done)} · agreement ${percent(c.agreements, c.successful)} · ${c.inFlight} in flight`;
  if (!$('status').dataset.final) $('status').textContent = state.run.isPaused?.() ? 'paused' : 'running';
}

function addReport(out) {
  const pre = document.createElement('pre');
  pre.className = 'report';
  pre.dataset.batch = out.report.batchNumber;
  pre.textContent = out.console;
  $('reports').prepend(pre);
  $('reports-section').hidden = false;
}

function table(el, header, rows, diagonal) {
  el.replaceChildren();
  const head = el.insertRow();
  for (const h of header) {
    const th = document.createElement('th');
    th.textContent = h;
    head.append(th);
  }
  rows.forEach((row, i) => {
    const tr = el.insertRow();
    row.forEach((cell, j) => {
      const td = tr.insertCell();
      td.textContent = cell;
      if (diagonal && j === i + 1) td.className = 'diag';
    });
  });
}

function showSummary(out) {
  const s = out.summary;
  state.summary = s;
  $('summary-text').textContent = out.console;
  const ev = s.evaluation;
  if (ev.confusionMatrix) {
    table($('matrix'), ['label \\ predicted', ...ev.labels], ev.confusionMatrix.map((row, i) => [ev.labels[i], ...row]), true);
  }
  const f = (v) => (v === null || v === undefined ? '-' : v.toFixed(3));
  table($('per-label'), ['label', 'precision', 'recall', 'F1', 'support'],
    ev.perLabel.map((l) => [l.label, f(l.precision), f(l.recall), f(l.f1), l.support]));
  $('summary').hidden = false;
  $('dl-summary').disabled = false;
  $('status').textContent = s.status === 'aborted' ? `aborted: ${s.abortReason}. ${nextStep(s.abortKind)}` : s.status;
  $('status').dataset.final = s.status;
}

async function start(resumeFrom) {
  showError('');
  const csvFile = $('csv').files[0];
  if (!csvFile && !resumeFrom) return showError('Choose a labels CSV first.');
  const csvText = resumeFrom ? resumeFrom.csvText : await csvFile.text();
  const csvName = resumeFrom ? resumeFrom.csvName : csvFile.name;
  const runId = resumeFrom ? resumeFrom.runId : fileStamp(Date.now());
  const config = resumeFrom ? resumeFrom.config : settings(runId, csvName);
  const mock = config.providerLabel === 'mock';
  const apiKey = mock ? null : $('api-key').value.trim();
  if (!mock && !apiKey) return showError('Enter the API key of the OpenAI-compatible endpoint (it stays in this page\'s memory only).');
  let run;
  try {
    run = new ShadowRun(csvText, config, now());
  } catch (e) {
    return showError(`${csvName}: ${e.message}`);
  }
  const files = new ImageFiles($('images').files);
  const missing = run.relativePaths().filter((p) => !files.lookup(p));
  if (missing.length && files.size) {
    $('data-info').textContent = `${missing.length} image path(s) of the CSV are not in the chosen folder (e.g. ${missing[0]}); they will fail.`;
  }
  Object.assign(state, { run, runId, csvName, lines: [], summary: null, started: now() });
  if (resumeFrom) {
    state.lines = await state.store.lines(runId);
    try {
      run.restore(state.lines.join(''), false);
    } catch (e) {
      return showError(`Cannot resume: ${e.message}`);
    }
  }
  await state.store.saveRun({ runId, csvName, csvText, config, status: 'running', startedAt: Date.now() });
  $('reports').replaceChildren();
  $('summary').hidden = true;
  $('live').hidden = false;
  delete $('status').dataset.final;
  setRunning(true);
  state.runner = new Runner(run, {
    files,
    apiKey,
    timeoutMs: config.requestTimeoutMs,
    on: {
      itemDone(outs) {
        if (!outs.length) return;
        const lines = outs.map((o) => o.jsonLine);
        state.lines.push(...lines);
        state.store.appendLines(runId, lines);
      },
      batchReport(out) { if (!out.report.resumed) addReport(out); state.explorer.live(state); },
      tick,
      finished(out) {
        tick();
        showSummary(out);
        state.explorer.finished(state);
        setRunning(false);
        state.store.saveRun({ runId, csvName, csvText, config, status: out.summary.status, startedAt: Date.now() });
      },
    },
  });
  state.runner.start();
}

async function main() {
  await init();
  fillForm(defaultConfig());
  state.store = await Store.open();
  state.explorer = new ExplorerPanel($('explorer-section'), () => new ImageFiles($('images').files));
  const toggle = () => {
    const mock = document.querySelector('input[name=endpoint]:checked').value === 'mock';
    $('openai-fields').hidden = mock;
    $('model').disabled = mock;
  };
  for (const r of document.querySelectorAll('input[name=endpoint]')) r.addEventListener('change', toggle);
  toggle();
  $('setup').addEventListener('submit', (e) => { e.preventDefault(); start(null).catch((err) => showError(String(err.message || err))); });
  $('pause').addEventListener('click', () => {
    const paused = state.run.isPaused();
    if (paused) state.runner.resume(); else state.runner.pause();
    $('pause').textContent = paused ? 'Pause' : 'Resume';
    tick();
  });
  $('cancel').addEventListener('click', () => { state.runner.cancel(); $('status').textContent = 'cancelling…'; });
  $('dl-progress').addEventListener('click', () =>
    download(progressFileName(state.runId), JSON.stringify(state.run.progress(now()), null, 2), 'application/json'));
  $('dl-summary').addEventListener('click', () =>
    download(summaryFileName(state.runId), JSON.stringify(state.summary, null, 2), 'application/json'));
  $('dl-results').addEventListener('click', () =>
    download(resultsFileName(state.runId), state.lines.join(''), 'application/x-ndjson'));

  const pending = await state.store.unfinished();
  if (pending) {
    const saved = (await state.store.lines(pending.runId)).length;
    $('resume-text').textContent =
      `An unfinished run of ${pending.csvName} (${pending.runId}) has ${saved} finished result(s) saved in this browser. ` +
      'Choose its images folder again if it uses file paths, then resume.';
    $('resume-offer').hidden = false;
    $('resume-accept').addEventListener('click', () => {
      $('resume-offer').hidden = true;
      start(pending).catch((err) => showError(String(err.message || err)));
    });
    $('resume-discard').addEventListener('click', async () => {
      await state.store.forget(pending.runId);
      $('resume-offer').hidden = true;
    });
  }
}

main().catch((e) => showError(`The page could not start: ${e.message || e}`));
