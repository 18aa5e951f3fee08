#!/usr/bin/env bash
# Every benchmark figure of shadow-batch in one run (see BENCHMARKS.md):
# rate-limit efficiency against the naive one-at-a-time script, the pipeline's
# ceiling next to wrk, the engine natively and as wasm under node, memory and
# report cost at 1,000,000 rows, and a 30 s straggler. All traffic stays on
# 127.0.0.1. Prints one table and writes it to target/bench-report.md.
#
#   bash scripts/bench.sh          # every scenario (about 6 minutes on 2 cores, plus the build)
#   bash scripts/bench.sh 1 4      # only some of them (1..5)
#
# Installs what it needs when missing: Debian's wrk and time, the wasm32-wasip1
# target. Benchmarks print figures; nothing here asserts on time.
set -euo pipefail
cd "$(dirname "$0")/.."

apt_updated=
apt_install() {
  if [ -z "$apt_updated" ]; then
    apt-get update -qq
    apt_updated=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}
command -v wrk >/dev/null || apt_install wrk
[ -x /usr/bin/time ] || apt_install time
command -v node >/dev/null || apt_install nodejs
rustup target list --installed | grep -q '^wasm32-wasip1$' || rustup target add wasm32-wasip1

# The path of the engine benchmark's executable for a target (one cargo build at
# a time: the machine has two cores).
engine_bench() {
  cargo bench -q --no-run -p shadow-core --bench engine --message-format=json "$@" \
    | grep '"name":"engine"' | grep -o '"executable":"[^"]*"' | tail -n 1 | cut -d'"' -f4
}

echo "== building (release): shadow-batch, bench harness, naive client, engine bench" >&2
cargo build -q --release -p shadow-native --bins --examples
SHADOW_BENCH_ENGINE=$(engine_bench)
# The same benchmark for wasm32-wasip1, run under node's WASI (scripts/wasi-run.mjs).
SHADOW_BENCH_ENGINE_WASM=$(engine_bench --target wasm32-wasip1)
export SHADOW_BENCH_ENGINE SHADOW_BENCH_ENGINE_WASM

echo "== load average before the run: $(cut -d' ' -f1-3 /proc/loadavg) (figures are steadiest below 0.5)" >&2
exec target/release/examples/bench "$@"
