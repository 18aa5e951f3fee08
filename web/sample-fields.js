// The Data box's Sample and Stop fields: a seeded random sample of the CSV's
// rows (as `--sample N|SHARE`) and a stop once the agreement is known to ±W (as
// `--until-interval W`), with the run's seed (the Seed setting) shown. The core
// reads both fields (its words on error, the CLI's) and draws the sample, so the
// same CSV, seed and size give the CLI's rows.

import { parseUntilInterval, runSample } from './pkg/shadow_wasm.js';

const $ = (id) => document.getElementById(id);
const INT = new Intl.NumberFormat('en-US');

/** Puts the fields' values into `config` (the settings `ShadowRun` takes):
 * `sampleSize` (text, read by the core), `untilInterval` (a number or null).
 * Returns the field with a problem and its message, or null. */
export function readSampleFields(config) {
  const size = $('sample-size').value.trim();
  config.sampleSize = size === '' ? null : size;
  config.stratify = $('stratify').checked;
  const until = $('until-interval').value.trim();
  config.untilInterval = null;
  if (until !== '') {
    try {
      config.untilInterval = parseUntilInterval(until);
    } catch (e) {
      return { field: 'until-interval', text: `Stop: ${e.message}` };
    }
  }
  return null;
}

/** Shows a stored run's (or the defaults') sample and stop in the fields. */
export function fillSampleFields(config) {
  $('sample-size').value = config.sampleSize ?? (config.sample ? String(config.sample.rows) : '');
  $('until-interval').value = config.untilInterval ?? '';
  $('stratify').checked = Boolean(config.stratify || config.sample?.strata);
}

/** What the run of `config` over `csvText` will be made of, said under the
 * fields; a problem (`{field, text}`) when the core refuses the sample. */
export function describeSample(csvText, config) {
  const note = $('sample-note');
  const asked = config.sampleSize || config.sample || config.stratify
    || (config.untilInterval !== null && config.untilInterval !== undefined);
  note.textContent = '';
  note.hidden = true;
  if (!asked) return null;
  let drawn;
  try {
    drawn = runSample(csvText, config);
  } catch (e) {
    // A CSV that cannot be read at all is said where the page says so, not here.
    try { runSample(csvText, { ...config, sampleSize: null, sample: null, untilInterval: null, stratify: false }); } catch { return null; }
    const field = /--until-interval/.test(e.message) ? 'until-interval' : 'sample-size';
    return { field, text: `${field === 'sample-size' ? 'Sample' : 'Stop'}: ${e.message}` };
  }
  const parts = [];
  if (drawn.random) {
    const cli = `--seed ${drawn.seed}${config.sampleSize ? ` --sample ${config.sampleSize}` : ''}${drawn.stratified ? ' --stratify' : ''}`;
    const kind = drawn.stratified ? 'A seeded random sample stratified by label' : 'A seeded random sample';
    parts.push(drawn.rows < drawn.csvRows
      ? `${kind}: ${INT.format(drawn.rows)} of ${INT.format(drawn.csvRows)} rows, seed ${drawn.seed} (the Seed setting; the CLI's ${cli} draws the same rows).`
      : `All ${INT.format(drawn.rows)} rows in a seeded random order, seed ${drawn.seed} (the Seed setting; the CLI's ${cli} gives the same order).`);
    parts.push('Every figure will be estimated from the rows compared, the agreement\'s interval for the whole CSV corrected for the sample.');
  }
  if (config.untilInterval !== null && config.untilInterval !== undefined) {
    parts.push(`It stops once the agreement's anytime-valid 95% interval is at most ±${(config.untilInterval * 100).toFixed(1)} points (resumable to go further).`);
  }
  note.textContent = parts.join(' ');
  note.hidden = parts.length === 0;
  return null;
}
