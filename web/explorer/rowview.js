// One row's own evidence, in a modal dialog over the explorer: the image large,
// the label, the model's label, what the model said (its raw answer, as the results
// file keeps it: bounded and redacted), attempts, latency, tokens, cost, HTTP
// status, and on failure the error with its kind. Opened from the results table
// (a row, its number or its thumbnail); Escape or the close button closes it and
// focus goes back to what opened it. ‹ and › step through the rows the table
// shows, in its order.
//
// The dialog hangs from the document's body, not from the explorer's container,
// so that a live update (which draws the explorer again) leaves it open; its
// content follows the row by number.

import { el, int, ms, usd, imageOf, imageOrPlaceholder, shown, REASON_NAMES } from './dom.js';

/** An item column's value at `i`, or null when the data has no such column. */
function itemValue(items, name, i) {
  const column = items[name];
  return column && column.length > i ? column[i] : null;
}

/** The row's facts as [name, value] pairs (value: a string or a node). */
export function rowFacts(data, i) {
  const it = data.items;
  const labels = data.labels;
  const p = it.prediction[i];
  const ok = it.ok[i];
  const attempts = it.attempts[i];
  const tokens = itemValue(it, 'tokens', i);
  const cost = itemValue(it, 'costUsd', i);
  const status = itemValue(it, 'httpStatus', i);
  const kind = itemValue(it, 'errorKind', i);
  const e = it.error[i];
  const priced = !!(data.cost && data.cost.price);
  const isolated = (text) => el('bdi', { text: shown(text) });
  const facts = [
    ['Label', isolated(labels[it.label[i]])],
    ['Model\'s label', p === null ? '— (no prediction)' : isolated(labels[p])],
    ['Attempts', attempts > 1 ? `${int(attempts)} (${int(attempts - 1)} ${attempts === 2 ? 'retry' : 'retries'})` : int(attempts)],
    ['Latency', `${ms(it.latencyMs[i])}${attempts > 1 && it.latencyMs[i] !== null ? ' (the last attempt)' : ''}`],
    ['Tokens', tokens === null ? '– (none reported)' : int(tokens)],
    ['Cost', cost === null ? (priced || tokens === null ? '–' : '– (no price known for this run)') : usd(cost)],
    ['HTTP status', status === null ? '–' : String(status)],
  ];
  if (!ok || e !== null) {
    facts.push(['Error kind', kind ? `${REASON_NAMES[kind] || kind} (${kind})` : '–']);
    facts.push(['Error', e === null ? '–' : isolated(it.errorTexts[e])]);
  }
  return facts;
}

export class RowView {
  /**
   * @param options  the explorer's: {thumbnail(image, i) -> url | null | {reason}}
   */
  constructor(options) {
    this.options = options;
    this.dialog = null;
    this.data = null;
    this.row = null;
    this.opener = null;
    // () => the item indices the table shows, in its order (for ‹ and ›).
    this.order = () => [];
    // (row number) => the element to focus when the opener is gone (a redrawn table).
    this.fallbackFocus = () => null;
  }

  /** Opens the view of item `i` of `data`; `opener` gets the focus back on close. */
  open(data, i, opener) {
    this.data = data;
    this.opener = opener || document.activeElement;
    this.ensureDialog();
    this.show(i);
    if (!this.dialog.open) this.dialog.showModal();
    this.closeButton.focus();
  }

  /** New data (a live run): the open view keeps its row (a finished row does not
   * change; its place among the rows shown may). */
  update(data) {
    this.data = data;
    if (!this.dialog || !this.dialog.open) return;
    const i = this.indexOf(this.row);
    if (i < 0) this.close();
    else this.showPlace(i);
  }

  get isOpen() {
    return !!(this.dialog && this.dialog.open);
  }

  indexOf(row) {
    const rows = this.data.items.row;
    // Items are sorted by row: a binary search.
    let lo = 0;
    let hi = rows.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (rows[mid] === row) return mid;
      if (rows[mid] < row) lo = mid + 1;
      else hi = mid - 1;
    }
    return -1;
  }

  ensureDialog() {
    if (this.dialog) return;
    this.heading = el('h2', { id: 'sx-rowview-h' });
    this.position = el('span', { class: 'sx-rv-pos', 'aria-live': 'polite' });
    this.prev = el('button', { type: 'button', class: 'sx-rv-step', text: '‹', 'aria-label': 'previous row', onclick: () => this.step(-1) });
    this.next = el('button', { type: 'button', class: 'sx-rv-step', text: '›', 'aria-label': 'next row', onclick: () => this.step(1) });
    this.closeButton = el('button', { type: 'button', class: 'sx-rv-close', text: '×', 'aria-label': 'Close the row\'s view', onclick: () => this.close() });
    this.body = el('div', { class: 'sx-rv-body' });
    this.dialog = el('dialog', { class: 'sx sx-rowview', 'aria-labelledby': 'sx-rowview-h' },
      el('div', { class: 'sx-rv-head' }, this.heading,
        el('div', { class: 'sx-rv-nav' }, this.prev, this.position, this.next, this.closeButton)),
      this.body);
    // A click on the backdrop (outside the dialog's box) closes it too.
    this.dialog.addEventListener('click', (ev) => {
      if (ev.target !== this.dialog) return;
      const r = this.dialog.getBoundingClientRect();
      if (ev.clientX < r.left || ev.clientX > r.right || ev.clientY < r.top || ev.clientY > r.bottom) this.close();
    });
    // Escape: closed here, so that focus is back on the opener at once (the
    // dialog's own `close` event comes a task later).
    this.dialog.addEventListener('cancel', () => this.close());
    this.dialog.addEventListener('close', () => this.restoreFocus());
    document.body.append(this.dialog);
  }

  /** Closes the view; focus goes back to what opened it. */
  close() {
    if (this.dialog.open) this.dialog.close();
    this.restoreFocus();
  }

  restoreFocus() {
    if (this.opener === null) return;
    const opener = this.opener;
    this.opener = null;
    const target = opener && opener.isConnected ? opener : this.fallbackFocus(this.row);
    if (target && typeof target.focus === 'function') target.focus();
  }

  /** Moves to the row `by` places away in the table's order. */
  step(by) {
    const order = this.order();
    const at = order.indexOf(this.indexOf(this.row));
    const to = at + by;
    if (at < 0 || to < 0 || to >= order.length) return;
    this.show(order[to]);
    const button = by < 0 ? this.prev : this.next;
    (button.disabled ? this.closeButton : button).focus();
  }

  /** The row's place among the rows the table shows, and the ‹ › buttons. */
  showPlace(i) {
    const order = this.order();
    const at = order.indexOf(i);
    this.prev.disabled = at <= 0;
    this.next.disabled = at < 0 || at >= order.length - 1;
    this.position.textContent = at < 0 ? 'not among the rows shown' : `${int(at + 1)} of ${int(order.length)} shown`;
  }

  show(i) {
    const data = this.data;
    const it = data.items;
    this.row = it.row[i];
    const id = itemValue(it, 'id', i);
    this.heading.replaceChildren(`Row ${int(it.row[i] + 1)}`,
      el('span', { class: 'sx-rv-sub' }, ` · CSV line ${int(it.line[i])}`, id ? [' · id ', el('bdi', { text: shown(id) })] : null));
    this.showPlace(i);

    const p = it.prediction[i];
    const ok = it.ok[i];
    const agree = ok && p === it.label[i];
    const verdict = !ok ? ['failed: no prediction', 'sx-failed'] : agree ? ['✓ the model agrees with the label', 'sx-agree'] : ['✗ the model differs from the label', 'sx-disagree'];
    const answer = itemValue(it, 'answer', i);
    this.body.replaceChildren(
      el('figure', { class: 'sx-rv-image' }, this.image(i),
        el('figcaption', {}, el('bdi', { text: shown(it.image[i]) }))),
      el('div', { class: 'sx-rv-facts' },
        el('p', { class: `sx-rv-verdict ${verdict[1]}`, text: verdict[0] }),
        el('dl', {}, rowFacts(data, i).map(([name, value]) => el('div', { class: 'sx-rv-fact', dataset: { fact: name } },
          el('dt', { text: name }), el('dd', {}, value)))),
        el('h3', { text: 'What the model said' }),
        answer === null
          ? el('p', { class: 'sx-muted sx-rv-noanswer', text: ok ? 'No answer kept (results written before answers were kept).' : 'No answer: the row failed before one could be read (see the error).' })
          : el('pre', { class: 'sx-answer', tabindex: 0, 'aria-label': 'the model\'s raw answer' }, el('bdi', { text: shown(answer) }))));
  }

  image(i) {
    const image = this.data.items.image[i];
    const { url, reason } = imageOf(this.options.thumbnail, image, i);
    const placeholder = (why) => el('div', { class: 'sx-rv-noimg' }, el('strong', { text: 'No image' }), el('span', { text: why }));
    if (!url) return placeholder(reason);
    return imageOrPlaceholder(url, { alt: `the row's image, ${shown(image)}` }, placeholder);
  }
}
