#!/usr/bin/env bash
# Builds the browser page's wasm module into web/pkg. Installs the wasm32 target and
# the wasm-bindgen CLI (exactly the version of the wasm-bindgen crate in Cargo.lock)
# only when they are missing. Honours CARGO_TARGET_DIR (relative to the repository
# root, like cargo run from there).
set -euo pipefail
cd "$(dirname "$0")/.."

want=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/"/, "", $3); print $3 }' Cargo.lock)
have=$(wasm-bindgen --version 2>/dev/null | awk '{ print $2 }' || true)
if [ "$have" != "$want" ]; then
  echo "installing wasm-bindgen-cli $want (found: ${have:-none}); takes a few minutes"
  cargo install wasm-bindgen-cli --version "=$want"
fi
rustup target list --installed | grep -q '^wasm32-unknown-unknown$' || rustup target add wasm32-unknown-unknown

profile=${PROFILE:-release}
cargo build -q -p shadow-wasm --target wasm32-unknown-unknown --profile "$profile"
dir=$profile; [ "$profile" = dev ] && dir=debug
wasm-bindgen --target web --out-dir web/pkg "${CARGO_TARGET_DIR:-target}/wasm32-unknown-unknown/$dir/shadow_wasm.wasm"
echo "built web/pkg ($(du -h web/pkg/shadow_wasm_bg.wasm | cut -f1) wasm)"
