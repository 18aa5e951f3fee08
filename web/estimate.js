// The estimate before Start, in the Data box: what a run of this CSV would
// send, cost and take. The core decides which rows' image sizes it wants and
// works out every figure and line (the same as `shadow-batch estimate`); the
// page only reads the first bytes of those images from the chosen folder.

import { estimateSample, estimateRun, imageSize, inspectCsv } from './pkg/shadow_wasm.js';

/** Bytes of a file read for its size (PNG, GIF, JPEG and WEBP headers). */
const HEAD_BYTES = 256 * 1024;

/**
 * @param csvText  the CSV
 * @param config   the run's settings (as `ShadowRun` takes them)
 * @param files    the chosen images folder (an ImageFiles)
 * @returns {estimate, lines: [[name, value]]}
 */
export async function estimate(csvText, config, files) {
  const missing = [];
  const sizes = [];
  const wanted = new Map(estimateSample(csvText, config));
  for (const [row, path] of wanted) {
    const file = files.lookup(path);
    if (!file) continue;
    const size = imageSize(new Uint8Array(await file.slice(0, HEAD_BYTES).arrayBuffer()));
    if (size) sizes.push([row, size[0], size[1]]);
  }
  // Every relative path the folder lacks, not only the sampled ones.
  for (const [row, path] of relativePaths(csvText, config)) {
    if (!files.lookup(path)) missing.push(row);
  }
  return estimateRun(csvText, config, { missing, sizes });
}

function relativePaths(csvText, config) {
  const { imageColumn, labelColumn, idColumn } = config;
  // The run's rows: a sampled run's, numbered as estimateSample numbers them.
  return inspectCsv(csvText, { imageColumn, labelColumn, idColumn }, config).relative;
}

/** Shows `lines` in the `<dl>` `list`, as text. */
export function showEstimate(list, lines) {
  list.replaceChildren();
  for (const [name, value] of lines) {
    const dt = document.createElement('dt');
    dt.textContent = name;
    const dd = document.createElement('dd');
    dd.textContent = value;
    list.append(dt, dd);
  }
  list.hidden = lines.length === 0;
}
