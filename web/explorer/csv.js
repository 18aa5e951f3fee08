// The results table's rows as a CSV file: the rows the filters show, in the order
// shown, one line each under a header of the results journal's field names.
// Values are quoted as RFC 4180 says, and a value a spreadsheet would run as a
// formula (one starting with = + - @, a tab or a carriage return: OWASP's "CSV
// injection") starts with a ' so that it stays text.

/** The CSV's columns: the results journal's field names. */
export const CSV_COLUMNS = ['row', 'line', 'id', 'image', 'label', 'prediction', 'agreement', 'status', 'attempts',
  'latencyMs', 'errorKind', 'httpStatus', 'tokens', 'costUsd', 'error', 'answer'];

/** One CSV field: formula-safe, then quoted when it holds a quote, a comma or a line break. */
export function csvField(value) {
  if (value === null || value === undefined) return '';
  let text = String(value);
  if (/^[=+\-@\t\r]/.test(text)) text = `'${text}`;
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

/** The CSV text of rows `indices` (into the explorer data's item columns) of `data`. */
export function rowsCsv(data, indices) {
  const it = data.items;
  const labels = data.labels;
  const col = (name, i) => (it[name] && it[name].length ? it[name][i] : null);
  const lines = [CSV_COLUMNS.join(',')];
  for (const i of indices) {
    const p = it.prediction[i];
    const ok = it.ok[i];
    const e = it.error[i];
    lines.push([
      it.row[i], it.line[i], col('id', i), it.image[i], labels[it.label[i]], p === null ? null : labels[p],
      ok ? p === it.label[i] : null, ok ? 'success' : 'failed', it.attempts[i], it.latencyMs[i], col('errorKind', i),
      col('httpStatus', i), col('tokens', i), col('costUsd', i), e === null ? null : it.errorTexts[e], col('answer', i),
    ].map(csvField).join(','));
  }
  return `${lines.join('\r\n')}\r\n`;
}

/** Offers `text` as a download named `name`. */
export function offerDownload(name, text, type) {
  const a = document.createElement('a');
  a.href = URL.createObjectURL(new Blob([text], { type }));
  a.download = name;
  a.hidden = true;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 1000);
}
