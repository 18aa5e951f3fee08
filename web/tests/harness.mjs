// Shared set-up of the page's browser tests: `shadow-batch web` (page + mock endpoint
// on one origin) started on a free port, headless Chromium, and the page driven the
// way a user drives it. Same conventions as e2e.test.mjs:
//
// - the CLI binary is $SHADOW_BATCH_BIN, else target/debug/shadow-batch under
//   $CARGO_TARGET_DIR (relative to the repository root) or the repository's target/;
// - $SHADOW_WEB_DIR serves another copy of the page (e.g. an older commit's web/, to
//   check that a test fails on it); by default the server's own web/ folder.
//
// Not a test file itself (node --test picks files named *.test.mjs).

import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { chromium } from 'playwright-core';

export const ROOT = resolve(import.meta.dirname, '../..');
const TARGET = resolve(ROOT, process.env.CARGO_TARGET_DIR || 'target');
export const BIN = process.env.SHADOW_BATCH_BIN || join(TARGET, 'debug/shadow-batch');
export const CSV = join(ROOT, 'training-data/labels.csv');
export const IMAGES = join(ROOT, 'training-data/images');
const MOCK = ['--accuracy', '0.9', '--seed', '42'];

const children = [];
let browser;

export async function launch() {
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
  return browser;
}

export async function shutdown() {
  await browser?.close();
  for (const c of children) c.kill('SIGKILL');
}

/** Starts `shadow-batch web` with the mock's `extra` flags; resolves to its origin. */
export function serve(extra = []) {
  const web = process.env.SHADOW_WEB_DIR ? ['--web-dir', process.env.SHADOW_WEB_DIR] : [];
  const args = ['web', '--port', '0', '--truth', CSV, ...MOCK, ...web, ...extra];
  return new Promise((resolvePromise, reject) => {
    const child = spawn(BIN, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(child);
    let out = '';
    const timer = setTimeout(() => reject(new Error(`web server did not start: ${out}`)), 20_000);
    child.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/page at (http:\/\/127\.0\.0\.1:\d+)\//);
      if (m) { clearTimeout(timer); resolvePromise(m[1]); }
    });
    child.stderr.on('data', (d) => { out += d; });
    child.on('exit', (code) => reject(new Error(`web server exited ${code}: ${out}`)));
  });
}

/** A page in a fresh browser context (its own IndexedDB) that records its dialogs
 * (dismissed) and page errors. */
export async function newPage(viewport) {
  const context = await browser.newContext({ viewport });
  const page = await context.newPage();
  page.dialogs = [];
  page.errors = [];
  page.on('dialog', (d) => { page.dialogs.push(d.message()); d.dismiss(); });
  page.on('pageerror', (e) => { page.errors.push(String(e)); });
  return { context, page };
}

/** A fresh browser context (its own IndexedDB) on the page, once the page is ready. */
export async function openPage(url, viewport = { width: 1100, height: 900 }) {
  const { page } = await newPage(viewport);
  await page.goto(url);
  await ready(page);
  return page;
}

/** Waits for the page's start-up (wasm loaded, stored runs read). */
export async function ready(page) {
  // `ready` is set once the stored runs are read and offered; a page without the
  // flag (an older commit's) is taken as ready once its store is open.
  await page.waitForFunction(() => window.__shadow
    && (window.__shadow.ready === true || (window.__shadow.ready === undefined && window.__shadow.store !== null)));
}

/** Chooses a CSV (the shipped one unless `csv` says another; none with null) and,
 * unless `images` is false, the shipped images folder. */
export async function chooseData(page, { images = true, csv = CSV } = {}) {
  if (csv) await page.setInputFiles('#csv', csv);
  if (images) await page.setInputFiles('#images', IMAGES);
}

/** Sets form fields by id: `{ 'batch-size': 25, delay: 0 }`. */
export async function fill(page, fields) {
  for (const [id, value] of Object.entries(fields)) await page.fill(`#${id}`, String(value));
}

/** Waits until the page's current run has at least `n` results. */
export async function waitForLines(page, n, timeout = 30_000) {
  await page.waitForFunction((k) => window.__shadow.lines.length >= k, n, { timeout });
}

/** Waits for the page to show that its run ended; returns the status text. */
export async function waitForEnd(page, timeout = 90_000) {
  await page.waitForSelector('#status[data-final]', { timeout });
  return page.textContent('#status');
}

/** What the page holds after a run: summary, result lines, batch reports shown. */
export function results(page) {
  return page.evaluate(() => ({
    summary: window.__shadow.summary,
    lines: window.__shadow.lines,
    reportsShown: [...document.querySelectorAll('pre.report')].map((p) => p.textContent),
  }));
}

/** The rows of result lines, for "every row exactly once" checks. */
export const rowsOf = (lines) => lines.map((l) => JSON.parse(l).row);

/** A labels CSV written to a fresh folder; returns its path. */
export function writeCsv(name, rows) {
  const dir = mkdtempSync(join(tmpdir(), 'shadow-page-'));
  const path = join(dir, name);
  writeFileSync(path, rows.join('\n') + '\n');
  return path;
}

/** The message a field points at with aria-describedby, and whether it is marked invalid. */
export function fieldProblem(page, id) {
  return page.evaluate((fieldId) => {
    const field = document.getElementById(fieldId);
    const ids = (field.getAttribute('aria-describedby') || '').split(/\s+/).filter(Boolean);
    const text = ids.map((i) => document.getElementById(i))
      .filter((el) => el && !el.hidden && el.classList.contains('problem'))
      .map((el) => el.textContent).join(' ');
    return { invalid: field.getAttribute('aria-invalid') === 'true', text };
  }, id);
}
