// A run over a seeded sample of the CSV's rows (`--sample`, `--until-interval`,
// the page's Sample and Stop fields): one banner at the top of the explorer
// that says every figure is estimated from n of N rows, with the agreement's
// interval for the whole CSV (finite-population correction) and, for a run that
// stops once it knows enough, the anytime-valid interval that justified the
// stop beside the ordinary Wilson one. The data are the summary's `sample` and
// `precision` blocks as the core wrote them (`data.csvSample`, `data.precision`).
//
// Each line of the banner is one function of the data (SAMPLE_LINES, then
// PRECISION_LINES).

import { el, int, interval } from './dom.js';

/** "estimated from 96 of 300 rows": the rows compared, of the CSV's. */
export function estimatedFrom(sample) {
  return `estimated from ${int(sample.compared)} of ${int(sample.csvRows)} rows`;
}

const pointsOf = (w) => `±${(w * 100).toFixed(1)} points`;

/** The lines said of the sample: each gives nodes, or null to say nothing. */
const SAMPLE_LINES = [
  // What every figure is.
  (s) => [
    el('strong', { text: `Every figure is ${estimatedFrom(s)}` }),
    `: a seeded random sample of ${int(s.rows)} rows (seed ${s.seed}${s.stratified ? ', stratified by label: each label its share of the CSV' : ''})`,
    s.rows > s.compared ? `; ${int(s.rows - s.compared)} of them not compared (failed, or not sent yet).` : '.',
  ],
  // A stratified sample's agreement, reweighted to the CSV's label shares.
  (s) => (s.stratified && typeof s.stratifiedAgreement === 'number'
    ? [
      'Agreement reweighted to the CSV\'s labels: ',
      el('strong', { class: 'sx-sampling-reweighted', text: `${(s.stratifiedAgreement * 100).toFixed(2)}%` }),
      ' (each label\'s agreement weighted by its share of the CSV; the other figures are the sample\'s own).',
    ]
    : null),
  // The agreement for the whole CSV.
  (s) => (s.agreementIntervalForCsv
    ? [
      'Agreement over the whole CSV: ',
      el('strong', { class: 'sx-sampling-csv', text: interval(s.agreementIntervalForCsv) }),
      s.compared >= s.csvRows
        ? ' (every row compared: exact).'
        : ' (95%, with the finite-population correction for a sample drawn without replacement).',
    ]
    : null),
];

/** The lines said of the stop (`--until-interval`). */
const PRECISION_LINES = [
  (p) => (p.stopReason
    ? [el('strong', { class: 'sx-sampling-stop', text: `Stopped: ${p.stopReason}.` }),
      ` The agreement's anytime-valid 95% interval is ${interval(p.anytimeInterval)} (${pointsOf(p.halfWidth)} over ${int(p.rows)} rows; asked ${pointsOf(p.targetHalfWidth)}).`]
    : [el('strong', { text: `Stops when the agreement is known to ${pointsOf(p.targetHalfWidth)}` }),
      `: its anytime-valid 95% interval is ${interval(p.anytimeInterval)} (${pointsOf(p.halfWidth)} over ${int(p.rows)} rows).`]),
  (p) => [
    'That interval holds however often the run looked at it; the ordinary Wilson interval of the same rows, ',
    el('span', { class: 'sx-sampling-wilson', text: interval(p.wilsonInterval) || '–' }),
    ', is for reading only (too narrow at a stop the data chose).',
  ],
  (p) => (p.stopReason ? 'The run can be resumed with a narrower interval to go further.' : null),
];

function bannerLines(makers, block) {
  return makers.map((make) => make(block)).filter(Boolean).map((nodes) => el('p', {}, nodes));
}

/**
 * The banner for `data`, or null for a run over the whole CSV in file order.
 */
export function samplingBanner(data) {
  const s = data.csvSample && typeof data.csvSample === 'object' ? data.csvSample : null;
  const p = data.precision && typeof data.precision === 'object' ? data.precision : null;
  if (!s && !p) return null;
  return el('div', { class: 'sx-sampling', role: 'note', 'aria-label': 'Sample' },
    s ? bannerLines(SAMPLE_LINES, s) : null,
    p ? bannerLines(PRECISION_LINES, p) : null);
}

/** The words under each headline rate: "estimated from 96 of 300 rows", or null. */
export function figureTag(data) {
  const s = data.csvSample && typeof data.csvSample === 'object' ? data.csvSample : null;
  return s ? estimatedFrom(s) : null;
}
