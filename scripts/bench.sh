#!/usr/bin/env bash
# Every benchmark figure of shadow-batch in one run (see BENCHMARKS.md):
#   1. rate-limit efficiency (RPM, with and without x-ratelimit-* headers, 100 and
#      300 ms), against the naive one-at-a-time script;
#   2. the pipeline's ceiling next to wrk;
#   3. the engine natively and as wasm under node;
#   4. memory and report cost at 1,000,000 rows;
#   5. a 30 s straggler;
#   6. a tokens-per-minute limit (the mock's --tpm, per-image token charges);
#   7. latency-bound with no limit (2,000 images at 500 ms).
# The pacing scenarios (1, 5, 6, 7) run shadow-batch with default flags and give a
# tuned figure beside each. All traffic stays on 127.0.0.1. Prints one table and
# writes it to target/bench-report.md.
#
#   bash scripts/bench.sh          # every scenario (about 15 minutes on 2 cores, plus the build)
#   bash scripts/bench.sh 1 6      # only some of them (1..7)
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

# Only scenarios 3 and 4 use the engine benchmark: skip its two builds otherwise.
need_engine=1
if [ $# -gt 0 ]; then
  need_engine=
  for s in "$@"; do
    case "$s" in 3 | 4) need_engine=1 ;; esac
  done
fi

echo "== building (release): shadow-batch, bench harness, naive client${need_engine:+, engine bench}" >&2
cargo build -q --release -p shadow-native --bins --examples
if [ -n "$need_engine" ]; then
  SHADOW_BENCH_ENGINE=$(engine_bench)
  # The same benchmark for wasm32-wasip1, run under node's WASI (scripts/wasi-run.mjs).
  SHADOW_BENCH_ENGINE_WASM=$(engine_bench --target wasm32-wasip1)
  export SHADOW_BENCH_ENGINE SHADOW_BENCH_ENGINE_WASM
fi

echo "== load average before the run: $(cut -d' ' -f1-3 /proc/loadavg) (figures are steadiest below 0.5)" >&2
exec target/release/examples/bench "$@"
