#!/usr/bin/env bash
# Long fuzz runs. CI runs the same targets briefly (core/tests/fuzz, a fixed seed,
# case counts sized for about ten seconds, inside `cargo test`); this script runs
# them for a set time each, with fresh seeds, in an optimized build that keeps
# overflow checks (profile `fuzz`), and prints executions, time and findings per
# target.
#
#   bash scripts/fuzz.sh [SECONDS_PER_TARGET]      default 60 (11 targets: ~11 min)
#   FUZZ_TARGETS="csv::any_input_is_read_or_refused" bash scripts/fuzz.sh 300
#
# A failing case is shrunk, printed into the log, and its seed saved in
# core/tests/proptest-regressions/<module>.txt, where `cargo test` replays it
# first from then on: commit that file with the fix.
#
# When a nightly toolchain and cargo-fuzz are installed, the coverage-guided
# libFuzzer targets of fuzz/ run too (FUZZ_LIBFUZZER=0 skips them); they start
# from the same seeds (core/tests/fuzz-corpus/<target>/) and write what they
# learn to target/fuzz-corpus/<target>/, outside the repository (copy an input
# worth keeping into the seed folder: the proptest targets mutate it too).
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-60}
cases=${FUZZ_CASES:-5000} # per round; rounds repeat with new seeds until time is up
logs=${FUZZ_LOGS:-target/fuzz-logs}
mkdir -p "$logs"

targets=(
  csv::any_input_is_read_or_refused
  answers::openai_answers
  answers::http_json_answers
  answers::error_bodies
  answers::any_body
  ratelimit::any_headers
  ratelimit::known_values_are_read_as_meant
  journal::any_journal_folds_and_resumes
  saved_run::any_saved_file_is_read_or_refused
  saved_run::saved_settings_are_read_back
  responses::any_endpoint_behaviour_ends_the_run
)
if [ -n "${FUZZ_TARGETS:-}" ]; then
  read -r -a targets <<<"$FUZZ_TARGETS"
fi

printf '== building the fuzz targets (profile fuzz)\n'
bin=$(cargo test -q -p shadow-core --profile fuzz --test fuzz --no-run --message-format=json \
  | jq -r 'select(.reason == "compiler-artifact" and .target.name == "fuzz") | .executable // empty' \
  | tail -1)
[ -x "$bin" ] || { echo "no test binary built" >&2; exit 1; }
listed=$("$bin" --list --format terse)
for t in "${targets[@]}"; do
  grep -qx "$t: test" <<<"$listed" || { echo "no such target: $t" >&2; exit 1; }
done

summary=()
failed=0
for t in "${targets[@]}"; do
  start=$(date +%s.%N)
  execs=0
  rounds=0
  findings=0
  while awk -v s="$start" -v now="$(date +%s.%N)" -v max="$seconds" 'BEGIN { exit !(now - s < max) }'; do
    seed=$(od -An -N6 -tu8 /dev/urandom | tr -d ' ')
    log="$logs/${t//::/.}-$seed.log"
    # A round that takes ten times the budget hangs: that is a finding too.
    if PROPTEST_CASES=$cases PROPTEST_RNG_SEED=$seed timeout $((seconds * 10 + 60)) \
        "$bin" --exact "$t" --test-threads 1 >"$log" 2>&1; then
      execs=$((execs + cases))
      rm -f "$log"
    else
      findings=$((findings + 1))
      echo "!! $t failed with PROPTEST_RNG_SEED=$seed: see $log" >&2
    fi
    rounds=$((rounds + 1))
  done
  elapsed=$(awk -v s="$start" -v now="$(date +%s.%N)" 'BEGIN { printf "%.0f", now - s }')
  line=$(printf '%-46s %10d executions %6ss %3d rounds %d findings' \
    "$t" "$execs" "$elapsed" "$rounds" "$findings")
  echo "$line"
  summary+=("$line")
  failed=$((failed + findings))
done

if [ "${FUZZ_LIBFUZZER:-1}" != 0 ] && rustup toolchain list | grep -q '^nightly' \
    && cargo +nightly fuzz --version >/dev/null 2>&1; then
  printf '\n== libFuzzer targets (cargo +nightly fuzz)\n'
  for t in $(cargo +nightly fuzz list); do
    # Each libFuzzer target is named after its seed folder.
    seeds="$PWD/core/tests/fuzz-corpus/$t"
    corpus="$PWD/target/fuzz-corpus/$t"
    mkdir -p "$corpus"
    log="$logs/libfuzzer-$t.log"
    # -malloc_limit_mb: one allocation over 512 MiB is a finding (no allocation
    # may be sized from a number in the input).
    if cargo +nightly fuzz run "$t" "$corpus" "$seeds" -- \
        -max_total_time="$seconds" -rss_limit_mb=2048 -malloc_limit_mb=512 \
        -max_len=65536 -print_final_stats=1 >"$log" 2>&1; then
      findings=0
    else
      findings=1
      failed=$((failed + 1))
      echo "!! libFuzzer $t found a crash: see $log and fuzz/artifacts/$t/" >&2
    fi
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | tr -d 'cov: ')
    line=$(printf '%-46s %10s executions %6ss  coverage %s edges, %d findings' \
      "libfuzzer $t" "${execs:-?}" "$seconds" "${cov:-?}" "$findings")
    echo "$line"
    summary+=("$line")
  done
else
  printf '\n(libFuzzer targets skipped: they need a nightly toolchain and cargo-fuzz)\n'
fi

printf '\n== summary (%s s per target)\n' "$seconds"
printf '%s\n' "${summary[@]}"
[ "$failed" = 0 ]
