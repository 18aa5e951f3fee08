// Slices: agreement, kappa and failures broken down by the values of one of the
// CSV's other columns (a site, a camera, a source, a date), from the summary's
// `slices` (shadow-core's eval::slices), worst first: where a model's failure
// hides while the run's figure looks fine. A chooser picks the column; columns
// with too many distinct values to break down are listed as not sliced, with why.
// Each value's agreement is drawn with its 95% interval against the run's
// agreement (a dashed line), on a scale shared by the column's values.

import { el, int, pct, num, interval, userText, userPlain } from './dom.js';

/** The columns a summary's `slices` holds: those broken down, and those not (too many values). */
export function sliceColumns(slices) {
  const all = Array.isArray(slices) ? slices.filter((c) => c && typeof c.column === 'string') : [];
  return {
    sliced: all.filter((c) => !c.tooManyValues && Array.isArray(c.values)),
    notSliced: all.filter((c) => c.tooManyValues),
  };
}

/** A column's values worst first: by gap to the run (lowest first), those with nothing compared last, ties by value. */
export function worstFirst(values) {
  const key = (v) => (typeof v.gap === 'number' ? v.gap : Infinity);
  return values.slice().sort((a, b) => key(a) - key(b) || (a.value < b.value ? -1 : a.value > b.value ? 1 : 0));
}

/** A gap in percentage points, signed: "−3.0 pts", "+4.0 pts". */
export function points(gap) {
  if (typeof gap !== 'number' || !Number.isFinite(gap)) return '–';
  const p = gap * 100;
  const text = Math.abs(p).toFixed(1);
  return `${text === '0.0' ? '±' : p < 0 ? '−' : '+'}${text} pts`;
}

/** The gap's cell: "−3.0 pts", its unit hidden at phone width (the heading says it). */
function gapCell(gap) {
  const text = points(gap);
  return text.endsWith(' pts') ? [text.slice(0, -4), el('span', { class: 'sx-wide', text: ' pts' })] : text;
}

/** The bar's scale: from just under the lowest interval end to just over the highest, in steps of 5%. */
function sliceScale(values, run) {
  const ends = [];
  for (const v of values) {
    if (v.agreementInterval) ends.push(v.agreementInterval.low, v.agreementInterval.high);
    if (typeof v.agreementRate === 'number') ends.push(v.agreementRate);
  }
  if (typeof run.rate === 'number') ends.push(run.rate);
  if (!ends.length) return { lo: 0, hi: 1 };
  let lo = Math.max(0, Math.floor(Math.min(...ends) * 20 - 1e-9) / 20);
  let hi = Math.min(1, Math.ceil(Math.max(...ends) * 20 + 1e-9) / 20);
  if (hi - lo < 0.1) {
    if (hi + 0.05 <= 1) hi += 0.05;
    if (hi - lo < 0.1) lo = Math.max(0, hi - 0.1);
  }
  return { lo, hi };
}

/** A value's agreement as a dot on its interval's whisker, with the run's agreement as a dashed line. */
function sliceBar(v, scale, run) {
  const at = (x) => `${(((x - scale.lo) / (scale.hi - scale.lo)) * 100).toFixed(2)}%`;
  const bar = el('div', { class: 'sx-sbar', 'aria-hidden': 'true' });
  if (typeof run.rate === 'number') bar.append(el('span', { class: 'sx-sbar-run', style: { left: at(run.rate) } }));
  const i = v.agreementInterval;
  if (i && typeof i.low === 'number') {
    bar.append(el('span', { class: 'sx-sbar-whisker', style: { left: at(i.low), width: `${(((i.high - i.low) / (scale.hi - scale.lo)) * 100).toFixed(2)}%` } }));
  }
  if (typeof v.agreementRate === 'number') bar.append(el('span', { class: 'sx-sbar-dot', style: { left: at(v.agreementRate) } }));
  return bar;
}

/** Where a value stands against the run: below (its interval wholly under the run's agreement), above, or within. */
function standing(v, run) {
  const i = v.agreementInterval;
  if (!i || typeof run.rate !== 'number') return null;
  if (i.high < run.rate) return { cls: 'sx-below', words: 'below the run: its 95% interval lies wholly under the run\'s agreement' };
  if (i.low > run.rate) return { cls: 'sx-above', words: 'above the run: its 95% interval lies wholly over the run\'s agreement' };
  return null;
}

/**
 * The "Slices" section for `data` (null when the data has no slices), showing the
 * column named `chosen` (else the first sliced one); `choose(name)` is called when
 * the user picks another column.
 */
export function slicesSection(data, chosen, choose) {
  const { sliced, notSliced } = sliceColumns(data.slices);
  if (!sliced.length && !notSliced.length) return null;
  const ev = data.evaluation || {};
  const totals = data.totals || {};
  const run = { rate: ev.agreementRate, interval: ev.agreementInterval };
  const column = sliced.find((c) => c.column === chosen) || sliced[0] || null;
  const section = el('section', { class: 'sx-slices-section', 'aria-labelledby': 'sx-slices-h' },
    el('h2', { id: 'sx-slices-h', text: 'Slices' }),
    el('p', { class: 'sx-muted', text: 'Agreement, kappa and failures by the values of one of the CSV\'s other columns, worst first: where a model\'s failure can hide while the run\'s figure looks fine.' }));
  if (sliced.length) {
    const select = el('select', { name: 'slice', onchange: (e) => choose(e.target.value) },
      sliced.map((c) => el('option', { value: c.column, text: `${userPlain(c.column)} (${int(c.values.length)} values)` })));
    select.value = column.column;
    section.append(el('label', { class: 'sx-slice-choose' }, 'Break down by ', select));
  }
  if (notSliced.length) {
    section.append(el('p', { class: 'sx-muted sx-notsliced' }, 'Not sliced: ',
      notSliced.map((c, k) => [k ? ', ' : '', userText(c.column)]),
      ` — ${notSliced.length === 1 ? 'it has' : 'each has'} more than 50 distinct values (a time, an id or free text breaks into slices too small to judge), so the summary does not break ${notSliced.length === 1 ? 'it' : 'them'} down.`));
  }
  if (!column) return section;

  const values = worstFirst(column.values);
  const scale = sliceScale(values, run);
  const kappa = (k) => (k && typeof k.value === 'number'
    ? [num(k.value), typeof k.standardError === 'number' ? el('span', { class: 'sx-ci sx-wide', text: `± ${num(1.96 * k.standardError)}` }) : null]
    : '–');
  const failed = (share, n, rows) => [pct(share), el('span', { class: 'sx-ci sx-wide', text: `${int(n)} of ${int(rows)}` })];
  const head = el('tr', {},
    el('th', { scope: 'col', text: column.column === '' ? '(unnamed column)' : null }, column.column === '' ? null : userText(column.column, 40)),
    el('th', { scope: 'col', class: 'sx-num sx-wide', text: 'rows' }),
    el('th', { scope: 'col', class: 'sx-num', text: 'agreement' }),
    el('th', { scope: 'col', class: 'sx-sbar-col' },
      el('span', { class: 'sx-visually-hidden', text: '95% interval, drawn' }),
      el('span', { class: 'sx-sbar-axis', 'aria-hidden': 'true' },
        el('span', { text: pct(scale.lo, 0) }), el('span', { text: pct(scale.hi, 0) }))),
    el('th', { scope: 'col', class: 'sx-num' }, el('span', { class: 'sx-wide', text: 'gap to the run' }), el('span', { class: 'sx-narrow', text: 'gap, pts' })),
    el('th', { scope: 'col', class: 'sx-num', text: 'κ' }),
    el('th', { scope: 'col', class: 'sx-num', text: 'failed' }));
  const runRow = el('tr', { class: 'sx-slice-run' },
    el('th', { scope: 'row' }, 'whole run', el('span', { class: 'sx-ci sx-narrow', text: `${int(totals.processed)} rows` })),
    el('td', { class: 'sx-num sx-wide', text: int(totals.processed) }),
    el('td', { class: 'sx-num' }, pct(run.rate), run.interval ? el('span', { class: 'sx-ci', text: interval(run.interval) }) : null),
    el('td', { class: 'sx-sbar-col' }, sliceBar({ agreementRate: run.rate, agreementInterval: run.interval }, scale, run)),
    el('td', { class: 'sx-num sx-muted', title: 'the reference: every value is compared with the whole run' },
      el('span', { class: 'sx-wide', text: 'reference' }), el('span', { class: 'sx-narrow', text: 'ref.' })),
    el('td', { class: 'sx-num' }, kappa(ev.kappa)),
    el('td', { class: 'sx-num' }, failed(totals.processed ? totals.failed / totals.processed : null, totals.failed, totals.processed)));
  const rows = values.map((v) => {
    const stand = standing(v, run);
    return el('tr', { class: stand ? stand.cls : null, dataset: { value: v.value } },
      el('th', { scope: 'row', title: stand ? stand.words : null }, v.value === '' ? el('em', { text: '(empty)' }) : userText(v.value, 40),
        el('span', { class: 'sx-ci sx-narrow', text: `${int(v.rows)} rows` })),
      el('td', { class: 'sx-num sx-rows sx-wide', text: int(v.rows) }),
      el('td', { class: 'sx-num sx-slice-rate' }, pct(v.agreementRate),
        v.agreementInterval ? el('span', { class: 'sx-ci', text: interval(v.agreementInterval) }) : el('span', { class: 'sx-ci', text: 'nothing compared' })),
      el('td', { class: 'sx-sbar-col' }, sliceBar(v, scale, run)),
      el('td', { class: 'sx-num sx-gap', title: stand ? stand.words : null }, gapCell(v.gap)),
      el('td', { class: 'sx-num' }, kappa(v.kappa)),
      el('td', { class: 'sx-num' }, failed(v.failureShare, v.failed, v.rows)));
  });
  section.append(
    el('p', { class: 'sx-muted', text: `Each value's agreement with its 95% interval; the dashed line is the run's agreement, ${pct(run.rate)}. `
      + 'Red: the interval lies wholly below it; green: wholly above. Gap: the value\'s agreement minus the run\'s, in percentage points.' }),
    el('div', { class: 'sx-scroll' },
      el('table', { class: 'sx-slices', dataset: { column: column.column } },
        el('caption', { class: 'sx-visually-hidden', text: `Agreement by ${userPlain(column.column, 40)}, worst first` }),
        el('thead', {}, head),
        el('tbody', {}, runRow, rows))));
  return section;
}
