// The page: settings in, progress and reports out. Everything the CSV or an
// endpoint supplies is shown with textContent, never as HTML.
//
// The run lifecycle: at most one run is prepared or running at a time
// (`state.active`); while one is, the resume offers are hidden and the stored runs'
// actions disabled. A run is started from the form (Start), or resumed from a stored
// run (its offer, or the stored runs list): the form then shows the stored run's
// settings, and the run uses what the form shows.

import init, {
  ShadowRun, browserAccess, defaultConfig, defaultProvider, settingBounds, fileStamp, formatDuration, mockModel,
  percent, prepareJournal, progressFileName, reportFileName, reportHtml, resultsFileName, summaryFileName,
} from './pkg/shadow_wasm.js';
import { ImageFiles, Runner, now } from './runner.js';
import { Store } from './store.js';
import { preflight } from './preflight.js';
import { estimate, showEstimate } from './estimate.js';
import { renderRuns } from './runs.js';
import { describeSample, fillSampleFields, readSampleFields } from './sample-fields.js';
import { ExplorerPanel } from './explorer-page.js';
import { ComparePanel } from './compare-page.js';

const $ = (id) => document.getElementById(id);
const state = {
  runner: null, run: null, runId: null, lines: [], summary: null, csvName: null, started: 0, store: null,
  // A run is being prepared or running: nothing else may start.
  active: false,
  cancelling: false,
  // The stored run the form is set up to resume: {record, retryFailed}.
  resume: null,
  // The run whose settings the form shows (started from it, or filled from it).
  formRunId: null,
  // Each provider's settings as the user left them (kind -> RunConfig.provider),
  // and its API key (kind -> key, in memory only), while another one is shown.
  providers: {},
  keys: {},
  // The provider whose settings the fields show now.
  shownKind: null,
  // Set once the stored runs are read and offered (for the browser tests).
  ready: false,
  // The run's retries and 429s in its earlier sessions (the core counts them per
  // session), and what was last kept of its totals: {retries, rateLimitHits, at}.
  earlier: { retries: 0, rateLimitHits: 0 },
  talliesKept: null,
};
window.__shadow = state; // for the browser tests

function showError(message) {
  $('error').textContent = message;
  $('error').hidden = !message;
}

// Field problems: a message next to the field to fix, tied to it with
// aria-describedby, the field marked aria-invalid until it is edited.
const PROBLEM_OF = {
  images: 'data-info', 'base-url': 'base-url-problem', 'api-key': 'api-key-problem', model: 'model-problem',
  endpoint: 'endpoint-problem', deployment: 'deployment-problem',
  'sample-size': 'sample-size-problem', 'until-interval': 'until-interval-problem',
};

function markField(field, message) {
  const problem = $(PROBLEM_OF[field]);
  problem.textContent = message;
  problem.classList.add('problem');
  problem.hidden = false;
  // The note under the address says less than the problem now shown there.
  if (field === 'base-url') $('endpoint-note').hidden = true;
  const input = $(field);
  if (input) {
    input.setAttribute('aria-invalid', 'true');
    if (document.activeElement === document.body || document.activeElement === $('start')) input.focus();
  }
}

function clearField(field) {
  const problem = $(PROBLEM_OF[field]);
  if (field === 'images') {
    problem.classList.remove('problem'); // still the folder's hint
  } else {
    problem.hidden = true;
    problem.textContent = '';
  }
  $(field)?.removeAttribute('aria-invalid');
  if (field === 'base-url' && state.shownKind) showAccess();
}

const clearFields = () => Object.keys(PROBLEM_OF).forEach(clearField);

// The settings form's fields: each reads one setting of the core's RunConfig and
// writes it back. The form starts from defaultConfig() and takes its limits from
// settingBounds(): the page keeps no defaults and no ranges.
const numeric = (setting, scale = 1) => ({
  setting,
  scale,
  get: (c) => c[setting] / scale,
  set: (c, v) => { c[setting] = Math.round(Number(v) * scale); },
});
/** A setting that may be left unset (empty field = null). */
const optional = (setting) => ({
  setting,
  scale: 1,
  get: (c) => c[setting] ?? '',
  set: (c, v) => { c[setting] = v === '' ? null : Math.round(Number(v)); },
});
const FIELDS = {
  'batch-size': numeric('batchSize'),
  delay: numeric('delayMs'),
  retries: numeric('maxRetries'),
  concurrency: optional('concurrency'),
  rpm: optional('rpm'),
  tpm: optional('tpm'),
  timeout: numeric('requestTimeoutMs', 1000),
  seed: numeric('seed'),
};

// The endpoint choice: the built-in mock, or a provider. Which form fields each
// provider shows, and the setting of `RunConfig.provider` each one is; the values
// start from the core's defaults for that provider (`defaultProvider`), and whether
// this page may call the endpoint is the core's to say (`browserAccess`).
const PROVIDER_FIELDS = {
  openai: { 'base-url': 'baseUrl', model: 'model' },
  anthropic: { 'base-url': 'baseUrl', model: 'model' },
  gemini: { 'base-url': 'baseUrl', model: 'model' },
  azure: { 'base-url': 'baseUrl', deployment: 'deployment', 'api-version': 'apiVersion' },
};
const FIELD_WORDS = { 'base-url': 'the Base URL', model: 'the model', deployment: "the deployment's name" };

const chosenKind = () => document.querySelector('input[name=endpoint]:checked').value;
const mockChosen = () => chosenKind() === 'mock';
/** How the page names a provider ("Anthropic's API"). */
const providerName = (kind) => document.querySelector(`input[name=endpoint][value=${kind}]`).dataset.name;
/** The stored run's endpoint choice: a provider the page offers, else the mock. */
const kindOf = (config) => (PROVIDER_FIELDS[config.providerLabel] ? config.providerLabel : 'mock');

/** The settings of provider `kind`, with what its fields show when they are shown. */
function providerOf(kind) {
  const provider = structuredClone(state.providers[kind] ?? defaultProvider(kind));
  if (state.shownKind === kind) {
    for (const [id, key] of Object.entries(PROVIDER_FIELDS[kind])) {
      const value = $(id).value.trim();
      provider[key] = key === 'apiVersion' && value === '' ? null : value;
    }
  }
  return provider;
}

/** Keeps what the fields show (settings and key) for the provider shown. */
function keepShown() {
  const shown = state.shownKind;
  if (!shown || shown === 'mock') return;
  state.providers[shown] = providerOf(shown);
  state.keys[shown] = $('api-key').value;
}

/** Shows provider `kind`'s fields with its settings (the mock: its model, no
 * fields), keeping the one shown before for when it is chosen again. */
function showProvider(kind) {
  keepShown();
  state.shownKind = kind;
  const mock = kind === 'mock';
  $('provider-fields').hidden = mock;
  $('azure-fields').hidden = kind !== 'azure';
  $('model-field').hidden = kind === 'azure';
  $('base-url-name').textContent = kind === 'azure' ? 'Resource URL' : 'Base URL';
  $('model').disabled = mock;
  if (mock) {
    $('model').value = mockModel();
  } else {
    const provider = state.providers[kind] ?? defaultProvider(kind);
    state.providers[kind] = provider;
    for (const id of ['base-url', 'model', 'deployment', 'api-version']) {
      const key = PROVIDER_FIELDS[kind][id];
      $(id).value = key ? (provider[key] ?? '') : '';
    }
    $('api-key').value = state.keys[kind] ?? '';
  }
  for (const id of ['base-url', 'api-key', 'model', 'deployment', 'endpoint']) clearField(id);
  showAccess();
}

/** Shows `config` in the form. With `endpoint`, also its endpoint choice (a stored run's). */
function fillForm(config, { endpoint = false } = {}) {
  const bounds = settingBounds();
  fillSampleFields(config);
  for (const [id, field] of Object.entries(FIELDS)) {
    $(id).value = field.get(config);
    const range = field.setting && bounds[field.setting];
    if (range) {
      $(id).min = range.min / field.scale;
      $(id).max = range.max / field.scale;
    }
  }
  const kind = endpoint ? kindOf(config) : chosenKind();
  keepShown();
  // A mock run's address and model are the mock's: the provider's fields keep the user's.
  if (kind !== 'mock' && config.providerLabel === kind) state.providers[kind] = structuredClone(config.provider);
  state.shownKind = null; // shown afresh from the settings just kept
  document.querySelector(`input[name=endpoint][value=${kind}]`).checked = true;
  showProvider(kind);
}

/** What the page says, before a run, of calling `kind`'s endpoint from here
 * (`access`: the core's browserAccess). */
function accessText(kind, access) {
  const name = providerName(kind);
  const at = access.host ? ` at ${access.host}` : '';
  const cli = `the CLI (shadow-batch labels.csv --provider ${kind}, the key in its environment variable)`;
  switch (access.cors) {
    case 'allowed': {
      const extra = access.headers.map(([n, v]) => `${n}: ${v}`).join(', ');
      return `${name}${at} answers calls from a browser page (CORS)` +
        (extra ? `; the page adds ${extra} to each request, which ${name} requires of calls from a page.` : '.');
    }
    case 'refused':
      return `${name}${at} does not answer calls from a browser page (no CORS), so this page cannot run it: ` +
        `use ${cli}, or enter the URL of a proxy that adds CORS in front of it.`;
    default:
      return `The server${at} must allow calls from this page (CORS), as shadow-batch mock-server does; ` +
        `if it does not, use ${cli}, or a proxy that adds CORS.`;
  }
}

/** The note under the endpoint's address: may this page call it? */
function showAccess() {
  const kind = chosenKind();
  let text = '';
  if (kind !== 'mock') {
    try {
      text = accessText(kind, browserAccess(providerOf(kind)));
    } catch {
      text = '';
    }
  }
  $('endpoint-note').textContent = text;
  $('endpoint-note').hidden = !text;
}

/** The run's settings: `base` (the defaults, or a resumed run's) with the form's values. */
function settings(base, runId, csvName) {
  const config = structuredClone(base);
  for (const [id, field] of Object.entries(FIELDS)) field.set(config, $(id).value);
  Object.assign(config, { runId, csvPath: csvName, resuming: Boolean(state.resume) });
  // The Sample and Stop fields: a problem with them is the first thing said at Start.
  config.sampleProblem = readSampleFields(config);
  const kind = chosenKind();
  if (kind === 'mock') {
    config.providerLabel = 'mock';
    config.provider = { ...defaultProvider('openai'), baseUrl: `${location.origin}/v1`, model: mockModel() };
  } else {
    config.providerLabel = kind;
    config.provider = providerOf(kind);
  }
  return config;
}

// The core says why a run stopped (abortKind); the page says what to do, in its
// own terms (its fields and its resume offer, not the CLI's flags), next to the
// field to fix.
function nextStep(reason, mock) {
  const resume = 'then resume the run ("Resume it", above the form).';
  switch (reason && reason.kind) {
    case 'unauthorized': return { field: 'api-key', text: `Check the key in the API key field, ${resume}` };
    case 'quotaExhausted': return { field: null, text: `Add credit or raise the account's limit, ${resume}` };
    case 'modelNotFound': return { field: 'model', text: `Put a model the endpoint serves in the Model field, ${resume}` };
    case 'endpointFailing':
    case 'endpointUnreachable': return mock
      ? { field: 'endpoint', text: `The page's own server (shadow-batch web) stopped answering: start it again, reload this page, ${resume}` }
      : { field: 'base-url', text: `Check the Base URL and that the endpoint is up, ${resume}` };
    case 'endpointRefuses': return mock
      ? { field: 'endpoint', text: `The page's own server refuses the requests: reload this page, ${resume}` }
      : { field: 'base-url', text: `Check the Base URL and the Model field against what the endpoint serves, ${resume}` };
    default: return { field: null, text: `Fix the cause, ${resume}` };
  }
}

/** After a run whose requests all failed to connect: a browser says the same
 * ("Failed to fetch") when nothing answers and when the endpoint does not allow
 * calls from this page (CORS). A request a page may send without asking (a
 * `no-cors` GET, whose answer it cannot read) tells them apart: when the endpoint
 * answers it, the page says that it is up but refuses calls from a page, and what
 * to do, next to the Base URL. */
async function explainUnreached(url, kind, runId) {
  let answers = false;
  try {
    await fetch(url, { mode: 'no-cors', cache: 'no-store', credentials: 'omit', signal: AbortSignal.timeout(5000) });
    answers = true;
  } catch {
    // Nothing answers: the Base URL's message stands.
  }
  if (answers && state.runId === runId && !state.active) {
    const host = new URL(url).host;
    markField('base-url', corsAdvice(kind, host));
    // The stored run's offer says the same (saved after the run's own last save).
    await state.saved?.catch(() => {});
    const record = (await state.store.runs()).find((r) => r.runId === runId);
    if (record) {
      await state.store.saveRun({ ...record, refusedByCors: host });
      if (!state.active) await refreshRuns();
    }
  }
  state.probed = runId;
}

/** What to do about an endpoint at `host` that answers, but not to a page's calls. */
function corsAdvice(kind, host) {
  const name = kind === 'openai' ? 'The endpoint' : providerName(kind);
  return `${name} at ${host} answers, but not to calls from a browser page: it does not allow them (CORS), so ` +
    `every request failed. Run this CSV with the CLI (shadow-batch labels.csv --provider ${kind}, the key in its ` +
    'environment variable), or enter the URL of a proxy that adds CORS in front of it, then resume the run ' +
    '("Resume it", above the form).';
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
  $('pause').textContent = 'Pause';
  $('cancel').disabled = !running;
  for (const el of $('setup').querySelectorAll('fieldset')) el.disabled = running;
  $('resume-leave').disabled = running;
}

// Resume mode: the form holds a stored run's settings, and Start resumes it.
function setResume(resume) {
  state.resume = resume;
  $('start').textContent = resume ? (resume.retryFailed ? 'Retry failed rows' : 'Resume run') : 'Start';
  $('resume-note').hidden = !resume;
  if (resume) {
    const { record, retryFailed } = resume;
    $('resume-note-text').textContent = `${retryFailed ? 'Retrying the failed rows of' : 'Resuming'} the run of ` +
      `${record.csvName} (${record.runId}), from the copy of the CSV stored with it. The form shows the run's settings.`;
  }
}

/** The run's retries and 429s over all its sessions. */
function totals(c) {
  return { retries: state.earlier.retries + c.retries, rateLimitHits: state.earlier.rateLimitHits + c.rateLimitHits };
}

/** A total, with this session's share when earlier sessions had some: `12 (8 this session)`. */
function acrossSessions(total, session) {
  return total === session ? String(total) : `${total} (${session} this session)`;
}

/** Keeps the run's totals of retries and 429s for a resume after a reload: when they
 * changed, at most once a second (and at the end, `now`). */
function keepTallies(c, now = false) {
  const all = totals(c);
  const kept = state.talliesKept;
  if (kept && kept.retries === all.retries && kept.rateLimitHits === all.rateLimitHits) return;
  const t = performance.now();
  if (!now && kept && t - kept.at < 1000) return;
  state.talliesKept = { ...all, at: t };
  const runId = state.runId;
  state.store.saveTallies(runId, all)
    .then(() => { state.talliesSaved = { runId, ...all }; }) // for the browser tests
    .catch(() => {});
}

function tick() {
  const c = state.run.counts();
  keepTallies(c);
  const all = totals(c);
  const done = c.successful + c.failed;
  $('bar').max = Math.max(1, c.total);
  $('bar').value = done;
  $('bar').setAttribute('aria-valuetext', `${done} of ${c.total} rows done`);
  const t = now();
  const elapsed = t - state.started;
  const rate = c.doneThisSession > 0 ? c.doneThisSession / (elapsed / 1000) : 0;
  const eta = rate > 0 ? ((c.total - done) / rate) * 1000 : 0;
  // An ETA only while rows are still going: not once Cancel is pressed, paused or ended.
  const going = !state.cancelling && !$('status').dataset.final && !state.run.isPaused();
  $('stats').textContent =
    `${done}/${c.total} done · ${rate.toFixed(1)} images/s · ${going ? `ETA ${formatDuration(eta)} · ` : ''}` +
    `success ${percent(c.successful, done)} · agreement ${percent(c.agreements, c.successful)} · ` +
    `${c.inFlight} in flight · retries ${acrossSessions(all.retries, c.retries)} · ` +
    `429s ${acrossSessions(all.rateLimitHits, c.rateLimitHits)} · ` +
    state.run.describePace(t);
  if ($('status').dataset.final) return;
  if (state.cancelling) {
    $('status').textContent = `cancelling… waiting for ${c.inFlight} request(s) in flight`;
  } else {
    $('status').textContent = state.run.isPaused() ? 'paused' : 'running';
  }
}

function addReport(out) {
  const pre = document.createElement('pre');
  pre.className = 'report';
  pre.dataset.batch = out.report.batchNumber;
  pre.textContent = out.console;
  $('reports').prepend(pre);
  $('reports-section').hidden = false;
}

/** The run ended: its status (and what to do next) in the live section, its
 * summary and report offered; the explorer shows the figures. */
function showEnd(out) {
  const s = out.summary;
  state.summary = s;
  $('dl-summary').disabled = false;
  $('dl-report').disabled = false;

  const mock = s.config.providerLabel === 'mock';
  const { total, successful, failed } = s.statistics;
  let status = s.status;
  if (s.status === 'aborted') {
    const step = nextStep(s.abortKind, mock);
    status = `aborted: ${s.abortReason}.`;
    if (step.field) markField(step.field, step.text); else status += ` ${step.text}`;
  } else if (s.status === 'interrupted') {
    status = `interrupted: ${total - successful - failed} of ${total} rows left; resume it from the offer above the form.`;
  } else if (failed > 0) {
    status = `completed: ${failed} of ${total} rows failed; retry them from the offer above the form.`;
  } else if (s.precision?.stopReason) {
    const p = s.precision;
    status = `completed: ${p.stopReason} after ${p.rows} rows (the agreement's anytime-valid 95% interval is ` +
      `±${(p.halfWidth * 100).toFixed(1)} points); resume it from the offer above the form, with a narrower Stop, to go further.`;
  }
  // The core says when no request reached the endpoint (`unreached`).
  const cause = s.status !== 'aborted' && s.unreached;
  if (cause) {
    const advice = mock
      ? `No request reached the page's own server (last error: ${cause.lastError}): is shadow-batch web still running?`
      : `No request reached the endpoint (last error: ${cause.lastError}): check the Base URL, that the endpoint is up, ` +
        'and that it accepts requests from this page (CORS), then retry the failed rows.';
    markField(mock ? 'endpoint' : 'base-url', advice);
  }
  const connection = s.abortKind?.kind === 'endpointUnreachable' || (cause && cause.connectionOnly);
  if (!mock && connection) explainUnreached(state.run.endpointUrl(), kindOf(s.config), s.runId);
  else state.probed = s.runId;
  $('status').textContent = status;
  $('status').dataset.final = s.status;
}

const runRecord = (extra) => ({
  runId: state.runId, csvName: state.csvName, csvText: state.csvText, config: state.config,
  startedAt: state.startedAt, counts: state.run ? countsOf(state.run) : undefined, ...extra,
});

function countsOf(run) {
  const { total, successful, failed } = run.counts();
  return { total, successful, failed };
}

async function refreshRuns() {
  await renderRuns(state.store, $('resume-offer'), $('stored-runs'), {
    resume: (record, retryFailed) => resumeRun(record, retryFailed),
    dismiss: async (record) => { await state.store.saveRun({ ...record, dismissed: true }); await refreshRuns(); },
    remove: async (record) => {
      if (state.active) return;
      await state.store.forget(record.runId);
      if (state.resume?.record.runId === record.runId) setResume(null);
      await refreshRuns();
    },
  }, {
    active: () => state.active,
    nextStep: (record) => (record.refusedByCors
      ? corsAdvice(kindOf(record.config), record.refusedByCors)
      : nextStep(record.abortKind, record.config?.providerLabel === 'mock').text),
  });
}

/** An offer or the stored list asked to resume `record`: the form shows its
 * settings (unless it shows them already, with the user's corrections since), then
 * the run resumes if nothing is missing. */
function resumeRun(record, retryFailed) {
  if (state.active) return;
  if (state.formRunId !== record.runId) fillForm(record.config, { endpoint: true });
  state.formRunId = record.runId;
  setResume({ record, retryFailed });
  updatePreflight();
  start().catch((err) => { state.active = false; showError(String(err.message || err)); });
}

// The check before Start, shown as soon as a CSV (or a stored run to resume) and a
// folder are known. Returns {csvText, csvName, done, check} for start(), or null.
let csvCache = { file: null, text: null };
async function csvOfForm() {
  const file = $('csv').files[0];
  if (!file) return null;
  if (csvCache.file !== file) csvCache = { file, text: await file.text() };
  return { csvText: csvCache.text, csvName: file.name };
}

async function resumeJournal(resume) {
  const stored = await state.store.lines(resume.record.runId);
  const kept = prepareJournal(stored.join(''), resume.retryFailed);
  const lines = kept ? kept.split(/(?<=\n)/) : [];
  return { kept, lines, done: new Set(lines.map((l) => JSON.parse(l).row)) };
}

/** The baseline column's choices: the CSV's columns beside image, label and id. */
function fillBaselineColumns(columns) {
  const select = $('baseline-column');
  const keep = select.value;
  select.replaceChildren(new Option('none', ''), ...columns.map((c) => new Option(c, c)));
  select.value = columns.includes(keep) ? keep : '';
}

async function updatePreflight() {
  const resume = state.resume;
  const source = resume ? { csvText: resume.record.csvText, csvName: resume.record.csvName } : await csvOfForm();
  if (!source) { $('data-info').textContent = ''; return null; }
  const done = resume ? (await resumeJournal(resume)).done : new Set();
  if (resume !== state.resume) return null; // changed meanwhile
  const files = new ImageFiles($('images').files);
  const runSettings = settings(resume ? resume.record.config : defaultConfig(), '', source.csvName);
  for (const id of ['sample-size', 'until-interval']) clearField(id);
  const sampleProblem = runSettings.sampleProblem || describeSample(source.csvText, runSettings);
  if (sampleProblem) {
    markField(sampleProblem.field, sampleProblem.text);
    showEstimate($('data-estimate'), []);
  }
  try {
    const check = preflight(source.csvText, files,
      { done, columns: resume?.record.config?.columns, settings: sampleProblem ? undefined : runSettings });
    $('data-info').textContent = check.text;
    if (!check.refuse) clearField('images');
    updateEstimate(source, files, check.refuse || Boolean(sampleProblem));
    fillBaselineColumns(check.extraColumns);
    return check;
  } catch (e) {
    $('data-info').textContent = `${source.csvName}: ${e.message}`;
    return null;
  }
}

// The estimate before Start (nothing sent): again whenever the data or the
// settings change; a newer request wins over one still reading images.
let estimateTurn = 0;
async function updateEstimate(source, files, refused) {
  const turn = ++estimateTurn;
  const list = $('data-estimate');
  if (!source || refused) { showEstimate(list, []); return; }
  try {
    const base = state.resume ? state.resume.record.config : defaultConfig();
    const config = settings(base, '', source.csvName);
    const { lines } = await estimate(source.csvText, config, files);
    if (turn === estimateTurn) showEstimate(list, lines);
  } catch (e) {
    if (turn === estimateTurn) showEstimate(list, []);
  }
}

async function start() {
  if (state.active) return; // never two runs
  state.active = true;
  // No offer or stored run can start another run from now on.
  $('resume-offer').hidden = true;
  for (const b of $('stored-runs').querySelectorAll('button')) b.disabled = true;
  let started = false;
  try {
    started = await prepareAndStart();
  } finally {
    if (!started) {
      state.active = false;
      await refreshRuns();
    }
  }
}

/** Returns whether a run started. */
async function prepareAndStart() {
  showError('');
  clearFields();
  const resume = state.resume;
  const source = resume ? { csvText: resume.record.csvText, csvName: resume.record.csvName } : await csvOfForm();
  if (!source) { showError('Choose a labels CSV first.'); return false; }
  const { csvText, csvName } = source;
  const runId = resume ? resume.record.runId : fileStamp(Date.now());
  const base = resume ? resume.record.config : defaultConfig();
  const config = settings(base, runId, csvName);
  const sampleProblem = config.sampleProblem || describeSample(csvText, config);
  delete config.sampleProblem;
  if (sampleProblem) {
    markField(sampleProblem.field, sampleProblem.text);
    $(sampleProblem.field).focus();
    return false;
  }
  const mock = config.providerLabel === 'mock';
  if (!mock) {
    const kind = config.providerLabel;
    const empty = Object.entries(PROVIDER_FIELDS[kind]).find(([, key]) => key !== 'apiVersion' && !config.provider[key]);
    if (empty) {
      const what = empty[0] === 'base-url' && kind === 'azure' ? "the resource's URL" : FIELD_WORDS[empty[0]];
      markField(empty[0], `Enter ${what} (${providerName(kind)}).`);
      $(empty[0]).focus();
      return false;
    }
    // An endpoint known not to answer a page's calls is said so now, not by every row failing.
    const access = browserAccess(config.provider);
    if (access.cors === 'refused') {
      markField('base-url', accessText(kind, access));
      $('base-url').focus();
      return false;
    }
  }
  const apiKey = mock ? null : $('api-key').value.trim();
  if (!mock && !apiKey) {
    markField('api-key', `Enter the API key of ${providerName(config.providerLabel)} (it stays in this page's memory only).`);
    $('api-key').focus();
    return false;
  }
  let run;
  try {
    run = new ShadowRun(csvText, config, now());
  } catch (e) {
    showError(`${csvName}: ${e.message}`);
    return false;
  }
  const journal = resume ? await resumeJournal(resume) : { kept: '', lines: [], done: new Set() };
  const files = new ImageFiles($('images').files);
  // The sample the core drew, kept with the run: a resume rebuilds the same rows.
  config.sample = run.drawnSample();
  if (config.sample) config.seed = config.sample.seed;
  const check = preflight(csvText, files, { done: journal.done, columns: config.columns, settings: config });
  $('data-info').textContent = check.text;
  if (check.refuse) {
    markField('images', check.text);
    $('images').focus();
    return false;
  }
  const baselineColumn = $('baseline-column').value;
  if (baselineColumn) {
    try {
      run.compareWithColumn(baselineColumn);
    } catch (e) {
      showError(`${csvName}: ${e.message}`);
      return false;
    }
  }
  if (resume) {
    try {
      run.restore(journal.kept, false);
    } catch (e) {
      showError(`Cannot resume: ${e.message}`);
      return false;
    }
    // The stored journal becomes the folded one (one line per row, without the
    // rows to retry), so that each row ends once in it.
    await state.store.replaceLines(runId, journal.lines);
  }

  Object.assign(state, {
    run, runId, csvName, csvText, config, baselineColumn, lines: journal.lines, summary: null, started: now(), cancelling: false,
    startedAt: resume ? resume.record.startedAt : Date.now(), formRunId: runId,
    earlier: resume ? await state.store.tallies(runId) : { retries: 0, rateLimitHits: 0 }, talliesKept: null,
  });
  setResume(null);
  fillForm(config); // what the run uses, as the core took it
  await state.store.saveRun(runRecord({ status: 'running' }));
  $('reports').replaceChildren();
  $('dl-summary').disabled = true;
  $('dl-report').disabled = true;
  $('live').hidden = false;
  delete $('status').dataset.final;
  setRunning(true);
  await refreshRuns(); // hides the offers while this run is active

  const runner = new Runner(run, {
    files,
    apiKey,
    timeoutMs: config.requestTimeoutMs,
    on: {
      itemDone(outs) {
        if (!outs.length) return;
        const lines = outs.map((o) => o.jsonLine);
        state.lines.push(...lines);
        state.store.appendLines(runId, lines);
        // The explorer follows the rows as they finish, not only at batch ends (a
        // batch of a slow model can take minutes); live() spaces its rebuilds.
        state.explorer.live(state);
      },
      batchReport(out) {
        if (!out.report.resumed) addReport(out);
        state.explorer.live(state);
        state.store.saveRun(runRecord({ status: 'running' }));
      },
      tick,
      finished(out) {
        state.active = false;
        state.cancelling = false;
        setRunning(false);
        keepTallies(state.run.counts(), true);
        showEnd(out);
        tick(); // the last counts, with no ETA now that the run ended
        state.explorer.finished(state);
        const s = out.summary;
        state.saved = state.store.saveRun(runRecord({
          status: s.status, abortKind: s.abortKind, abortReason: s.abortReason, stopReason: s.precision?.stopReason,
        }));
        state.saved
          .then(refreshRuns)
          .catch((e) => showError(`This browser could not keep the run: ${e.message || e}`));
      },
    },
  });
  state.runner = runner;
  runner.start();
  return true;
}

async function main() {
  await init();
  // The provider fields start with the OpenAI-compatible endpoint's settings
  // (hidden while the mock is chosen).
  showProvider('openai');
  fillForm(defaultConfig());
  state.store = await Store.open();
  state.explorer = new ExplorerPanel($('explorer-section'), () => new ImageFiles($('images').files));
  state.compare = new ComparePanel($('explorer-section'), (image) => state.explorer.thumbnail(image), csvOfForm);
  for (const r of document.querySelectorAll('input[name=endpoint]')) {
    r.addEventListener('change', () => showProvider(chosenKind()));
  }
  for (const id of ['base-url', 'api-key', 'model', 'deployment']) $(id).addEventListener('input', () => clearField(id));
  for (const id of ['base-url', 'api-version']) $(id).addEventListener('input', showAccess);
  $('csv').addEventListener('change', () => { setResume(null); updatePreflight(); });
  $('images').addEventListener('change', () => updatePreflight());
  // Settings that change the estimate: the endpoint, model, caps, seed.
  $('setup').addEventListener('change', (e) => {
    if (e.target.id !== 'csv' && e.target.id !== 'images') updatePreflight();
  });
  $('resume-leave').addEventListener('click', () => { setResume(null); fillForm(defaultConfig()); updatePreflight(); });
  $('setup').addEventListener('submit', (e) => {
    e.preventDefault();
    start().catch((err) => showError(String(err.message || err)));
  });
  $('pause').addEventListener('click', () => {
    if (!state.runner || state.runner.finished) return;
    if (state.run.isPaused()) state.runner.resume(); else state.runner.pause();
    $('pause').textContent = state.run.isPaused() ? 'Resume' : 'Pause';
  });
  $('cancel').addEventListener('click', () => {
    if (!state.runner || state.runner.finished) return;
    // Said before the core is told: with nothing in flight, it finishes at once.
    state.cancelling = true;
    $('pause').disabled = true;
    $('cancel').disabled = true;
    state.runner.cancel();
  });
  $('dl-progress').addEventListener('click', () =>
    download(progressFileName(state.runId), JSON.stringify(state.run.progress(now()), null, 2), 'application/json'));
  $('dl-summary').addEventListener('click', () =>
    download(summaryFileName(state.runId), JSON.stringify(state.summary, null, 2), 'application/json'));
  $('dl-results').addEventListener('click', () =>
    download(resultsFileName(state.runId), state.lines.join(''), 'application/x-ndjson'));
  // The CLI's self-contained report, written by the core from the same files.
  $('dl-report').addEventListener('click', () => {
    try {
      const html = reportHtml(JSON.stringify(state.summary), undefined, state.lines.join(''), state.runId);
      download(reportFileName(state.runId), html, 'text/html');
    } catch (e) {
      showError(`The report could not be written: ${e.message || e}`);
    }
  });

  await refreshRuns();
  state.ready = true;
}

main().catch((e) => showError(`The page could not start: ${e.message || e}`));
