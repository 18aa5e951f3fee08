// Runs a WASI preview1 module (e.g. a benchmark built for wasm32-wasip1) under
// node, passing it the arguments that follow:
//
//   node scripts/wasi-run.mjs FILE.wasm [ARGS...]
//
// The module gets stdout/stderr, the monotonic and wall clocks, and no files.
// Exits with the module's exit code.
import { readFile } from 'node:fs/promises';
import { argv, exit } from 'node:process';
import { WASI } from 'node:wasi';

const [file, ...args] = argv.slice(2);
if (!file) {
  console.error('usage: node scripts/wasi-run.mjs FILE.wasm [ARGS...]');
  exit(2);
}
const wasi = new WASI({ version: 'preview1', args: [file, ...args], env: {}, returnOnExit: true });
const module = await WebAssembly.compile(await readFile(file));
const instance = await WebAssembly.instantiate(module, {
  wasi_snapshot_preview1: wasi.wasiImport,
});
exit(wasi.start(instance) ?? 0);
