// The runs stored in this browser: the offer to resume (or retry the failed rows
// of) the latest run of each CSV, and the list of every stored run with its
// actions. Only the latest run of a CSV is offered: a run the user left behind and
// then ran the CSV again is not offered forever; it stays in the list until
// deleted. Nothing here starts a run while another is active: the page hides the
// offers and disables the list's actions then.

import { inspectCsv, prepareJournal } from './pkg/shadow_wasm.js';

const plural = (n, one, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

/** A stored status as the page words it. */
export function statusWord(status) {
  switch (status) {
    case 'running': return 'interrupted (the page was closed mid-run)';
    case 'interrupted': return 'interrupted (cancelled)';
    default: return status;
  }
}

/** What a stored run holds: results kept (one per row), failed among them, rows
 * left. Records of older pages have no counts: their CSV says how many rows. */
async function holdings(store, record) {
  const kept = prepareJournal((await store.lines(record.runId)).join(''), false);
  const lines = kept ? kept.split('\n').filter(Boolean) : [];
  const failed = lines.filter((l) => JSON.parse(l).status === 'failed').length;
  let total = record.counts?.total;
  if (total === undefined) {
    try { total = inspectCsv(record.csvText, undefined, record.config).rows; } catch { total = lines.length; }
  }
  return { total, finished: lines.length, failed, left: Math.max(0, total - lines.length) };
}

function el(tag, text, attrs = {}) {
  const e = document.createElement(tag);
  if (text !== undefined) e.textContent = text;
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  return e;
}

function actionButton(label, onClick, attrs = {}) {
  const b = el('button', label, { type: 'button', ...attrs });
  b.addEventListener('click', onClick);
  return b;
}

/**
 * Renders the offers (into `offerSection`, a section holding a <ul>) and the list
 * (into `listSection`, a <details> holding a table). Reads everything first, then
 * writes the page in one go, so that two renders in a row cannot interleave.
 *
 * @param actions {resume(record, retryFailed), dismiss(record), remove(record)}
 * @param options {active(): a run is being prepared or running, nextStep(record) -> text}
 */
export async function renderRuns(store, offerSection, listSection, actions, { active, nextStep }) {
  const runs = await store.runs();
  const latest = new Map();
  for (const r of runs) if (!latest.has(r.csvName)) latest.set(r.csvName, r); // runs(): latest first
  // What the offered runs, and runs cut mid-run (whose counts date from their last
  // batch report), hold.
  const held = new Map();
  for (const r of runs) {
    if ((latest.get(r.csvName) === r && !r.dismissed) || r.status === 'running') held.set(r.runId, await holdings(store, r));
  }

  // Offers: the latest run of each CSV, when something is left to do.
  const offers = [];
  for (const record of latest.values()) {
    const h = held.get(record.runId);
    if (record.dismissed || !h) continue;
    // A run that stopped once it knew enough (precision reached) goes further with a narrower stop.
    const unfinished = (record.status !== 'completed' || Boolean(record.stopReason)) && h.left > 0;
    if (!unfinished && h.failed === 0) continue;
    const li = el('li', undefined, { class: 'offer', 'data-run-id': record.runId });
    const who = `${record.csvName} (${record.runId})`;
    const failed = h.failed ? ` (${h.failed} failed)` : '';
    let text;
    if (!unfinished) {
      text = `The run of ${who} completed with ${plural(h.failed, 'failed row')}.`;
    } else {
      const saved = `has ${h.finished} finished result(s)${failed} saved in this browser; ${plural(h.left, 'row')} left.`;
      text = record.status === 'aborted'
        ? `A run of ${who} stopped: ${record.abortReason || 'aborted'}. It ${saved} ${nextStep(record)}`
        : record.stopReason
          ? `The run of ${who} stopped: ${record.stopReason}. It ${saved} To go further, narrow "Stop when the agreement is known to ±" and resume it.`
          : `An unfinished run of ${who} ${saved}`;
    }
    li.append(el('p', text, { class: 'offer-text' }));
    const needs = record.config?.providerLabel === 'mock' ? [] : ['enter the API key in the form'];
    needs.push('choose the images folder again if its CSV has file paths');
    li.append(el('p', `First ${needs.join('; ')}.`, { class: 'hint' }));
    const buttons = el('div', undefined, { class: 'buttons' });
    if (unfinished) buttons.append(actionButton('Resume it', () => actions.resume(record, false)));
    if (h.failed) buttons.append(actionButton('Retry failed', () => actions.resume(record, true)));
    buttons.append(actionButton('Not now', () => actions.dismiss(record), {
      'aria-label': `Not now: stop offering the run of ${who}; it stays in the stored runs`,
    }));
    li.append(buttons);
    offers.push(li);
  }

  // The list: every stored run.
  const rows = runs.map((record) => {
    const tr = document.createElement('tr');
    tr.dataset.runId = record.runId;
    tr.append(el('th', record.csvName, { scope: 'row' }));
    tr.insertCell().textContent = record.runId;
    tr.insertCell().textContent = statusWord(record.status);
    const h = held.get(record.runId);
    const c = h ? { total: h.total, done: h.finished, failed: h.failed }
      : record.counts && { total: record.counts.total, done: record.counts.successful + record.counts.failed, failed: record.counts.failed };
    tr.insertCell().textContent = c ? `${c.done}/${c.total}${c.failed ? `, ${c.failed} failed` : ''}` : '–';
    const cell = tr.insertCell();
    cell.className = 'actions';
    const who = `the run ${record.runId} of ${record.csvName}`;
    if (!c || c.done < c.total) {
      cell.append(actionButton('Resume', () => actions.resume(record, false), { 'aria-label': `Resume ${who}` }));
    }
    if (c?.failed) {
      cell.append(actionButton('Retry failed', () => actions.resume(record, true), { 'aria-label': `Retry the failed rows of ${who}` }));
    }
    cell.append(actionButton('Delete', () => actions.remove(record), { 'aria-label': `Delete ${who} and its saved results` }));
    return tr;
  });

  // Written in one go, with the activity as it is now.
  const busy = active();
  offerSection.querySelector('ul').replaceChildren(...offers);
  offerSection.hidden = busy || offers.length === 0;
  for (const tr of rows) for (const b of tr.querySelectorAll('button')) b.disabled = busy;
  listSection.querySelector('tbody').replaceChildren(...rows);
  listSection.querySelector('summary').textContent = `Runs stored in this browser (${runs.length})`;
  listSection.hidden = runs.length === 0;
}
