// Drift on real runs of the built-in mock: how many batches a stationary run
// flags, and how soon a mid-run fall in accuracy is flagged. Prints figures;
// asserts nothing (the seeded simulation tests in core/src/drift.rs do).
//
//   cargo build -p shadow-native && node scripts/bench-drift.mjs [ROWS] [BATCH]
//
// ROWS (default 100,000) distinct images: the first example image with the row
// number appended after its end, so every row is its own image and the mock's
// `--mock-accuracy-drop-at ROW:ACC` finds each row. Two runs at --mock-accuracy
// 0.9: one stationary, one falling to 0.8 at the middle row.

import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const ROOT = resolve(import.meta.dirname, '..');
const TARGET = resolve(ROOT, process.env.CARGO_TARGET_DIR || 'target');
const BIN = process.env.SHADOW_BATCH_BIN
  || [join(TARGET, 'release/shadow-batch'), join(TARGET, 'debug/shadow-batch')].find(existsSync);
const ROWS = Number(process.argv[2] || 100_000);
const BATCH = Number(process.argv[3] || 50);

const dir = mkdtempSync(join(tmpdir(), 'shadow-bench-drift-'));
mkdirSync(join(dir, 'images'));
const base = readFileSync(join(ROOT, 'training-data/images', readdirSync(join(ROOT, 'training-data/images')).filter((n) => n.endsWith('.png')).sort()[0]));
const rows = ['image,label'];
for (let i = 0; i < ROWS; i++) {
  writeFileSync(join(dir, 'images', `${i}.png`), Buffer.concat([base, Buffer.from(`row ${i}`)]));
  rows.push(`images/${i}.png,${i % 10}`);
}
writeFileSync(join(dir, 'labels.csv'), rows.join('\n') + '\n');

function run(name, extra) {
  const out = join(dir, name);
  mkdirSync(out);
  const t = performance.now();
  const r = spawnSync(BIN, [join(dir, 'labels.csv'), String(BATCH), '0', '3', '--concurrency', '64',
    '--mock-latency-ms', '0', '--mock-error-rate', '0', '--mock-accuracy', '0.9', '--out-dir', out, ...extra],
  { encoding: 'utf8', env: { ...process.env, OPENAI_API_KEY: '' }, maxBuffer: 1 << 30 });
  if (r.status !== 0) throw new Error(r.stderr.slice(-2000));
  const summary = JSON.parse(readFileSync(join(out, readdirSync(out).find((n) => /^shadow-mode-batch-(?!progress|results|report).*\.json$/.test(n))), 'utf8'));
  const flagged = summary.allReports.filter((b) => b.drift).map((b) => b.batchNumber);
  console.log(`${name}: ${summary.allReports.length} batches of ${BATCH}, ${flagged.length} flagged (${(100 * flagged.length / summary.allReports.length).toFixed(2)}%), run took ${Math.round(performance.now() - t)} ms`);
  return { flagged, reports: summary.allReports };
}

console.log(`== ${BIN}, ${ROWS} rows`);
const stable = run('stationary', []);
console.log(`   flagged batches: ${stable.flagged.join(', ') || 'none'}`);
const change = Math.floor(ROWS / 2);
const changeBatch = Math.floor(change / BATCH) + 1;
const drop = run('drop', ['--mock-accuracy-drop-at', `${change}:0.8`]);
const before = drop.flagged.filter((b) => b < changeBatch);
const after = drop.flagged.filter((b) => b >= changeBatch);
console.log(`   accuracy 0.9 -> 0.8 from row ${change} (batch ${changeBatch}): first flagged after it batch ${after[0]} ` +
  `(${after.length ? after[0] - changeBatch + 1 : 'never'} batches after the change); ${before.length} flagged before it; ` +
  `${after.length} of the ${drop.reports.length - changeBatch + 1} batches after it flagged`);
rmSync(dir, { recursive: true, force: true });
