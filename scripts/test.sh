#!/usr/bin/env bash
# Runs every check and test of shadow-batch. Installs what it needs when missing
# (wasm target, wasm-bindgen CLI, Chromium, npm packages), so it works on a fresh
# machine; safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*"; }

step "toolchain"
rustup component list --installed 2>/dev/null | grep -q '^rustfmt' || rustup component add rustfmt
rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy
rustup target list --installed | grep -q '^wasm32-unknown-unknown$' || rustup target add wasm32-unknown-unknown
# node runs the wasm tests and the browser tests; npm installs playwright-core.
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
fi

step "links of README.md and docs/ (files and anchors)"
node scripts/check-links.mjs

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (all targets, native and wasm32; warnings are errors)"
cargo clippy --workspace --all-targets -- -D warnings
cargo clippy -p shadow-core --lib --target wasm32-unknown-unknown -- -D warnings
cargo clippy -p shadow-wasm --all-targets --target wasm32-unknown-unknown -- -D warnings

step "core builds for wasm32 with no I/O crates in its dependencies"
cargo build -q -p shadow-core --target wasm32-unknown-unknown
if cargo tree -p shadow-core --target wasm32-unknown-unknown -e normal --prefix none \
    | grep -E '^(tokio|reqwest|wasm-bindgen|mio|hyper) '; then
  echo "shadow-core must not depend on the crates above" >&2
  exit 1
fi

step "cargo test (workspace: core and its fuzz targets, mock, native CLI)"
# --tests includes core/tests/fuzz: every fuzz target for a bounded number of
# cases with a fixed seed (about 10 s); scripts/fuzz.sh runs them for longer.
cargo test --workspace --lib --bins --tests
cargo test --workspace --doc

step "browser page: wasm build (installs the matching wasm-bindgen CLI if missing)"
bash web/build.sh

step "wasm face under wasm-bindgen-test (node)"
CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner \
  cargo test -p shadow-wasm --target wasm32-unknown-unknown

step "browser tests (headless Chromium + playwright-core)"
if [ ! -x /usr/bin/chromium ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
if [ ! -d web/node_modules/playwright-core ]; then
  (cd web && npm ci --no-audit --no-fund)
fi
cargo build -q -p shadow-native
(cd web && node --test tests/)
