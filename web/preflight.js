// The check before Start: what a run of this CSV with the chosen images folder will
// do, in one line ("300 rows, 300 images matched"), and whether it must be refused
// because every row would fail for a missing or wrong folder.

import { inspectCsv } from './pkg/shadow_wasm.js';

const plural = (n, one, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

/**
 * @param csvText  the CSV
 * @param files    the chosen images folder (an ImageFiles)
 * @param options  {done: Set of rows already final (a resumed run), columns, settings: the run's
 *                  (a sampled run's rows are its sample's)}
 * @returns {text, refuse, rows, extraColumns} (`refuse`: the run would fail every row, for the reason
 *          `text` gives); throws the core's message for a CSV it cannot read.
 */
export function preflight(csvText, files, { done = new Set(), columns, settings } = {}) {
  const csv = inspectCsv(csvText, columns, settings);
  const paths = csv.relative.filter(([row]) => !done.has(row));
  const matched = paths.filter(([, path]) => files.lookup(path));
  const parts = [csv.rows < csv.csvRows ? `${plural(csv.rows, 'row')} sampled of ${csv.csvRows}` : plural(csv.rows, 'row')];
  if (done.size) parts.push(`${done.size} already done, ${csv.rows - done.size} to run`);
  let unreadable = false;
  if (paths.length) {
    const missing = paths.find(([, path]) => !files.lookup(path));
    if (files.size === 0) {
      parts.push(`${matched.length} images found: choose the images folder`);
    } else if (matched.length === 0) {
      parts.push(`0 images found in the chosen folder: choose the folder the CSV's paths are relative to (e.g. ${missing[1]})`);
    } else {
      let text = `${plural(matched.length, 'image')} matched`;
      if (missing) text += `, ${paths.length - matched.length} not in the chosen folder (e.g. ${missing[1]}): those rows will fail`;
      parts.push(text);
    }
    unreadable = matched.length === 0;
  }
  if (csv.urls) parts.push(plural(csv.urls, 'image URL'));
  if (csv.absolute) parts.push(`${plural(csv.absolute, 'absolute path')} (a browser cannot read them: they will fail)`);
  if (csv.defective) parts.push(`${plural(csv.defective, 'unusable row')} (they will fail)`);
  // Refused only when nothing could succeed for want of images: no URL rows, and no
  // path the chosen folder holds.
  const left = csv.rows - done.size;
  const refuse = left > 0 && csv.urls === 0 && (paths.length > 0 || csv.absolute > 0) && (unreadable || paths.length === 0);
  return { text: parts.join(', '), refuse, rows: csv.rows, extraColumns: csv.extraColumns || [] };
}
