#!/usr/bin/env bash
# Nightly fuzzing (not part of CI): every fuzz target for a fixed number of
# executions from a corpus seeded with fixtures/, one worker per target,
# niced so other builds on the machine keep their share.
#
# Usage: bash fuzz/run.sh [TARGET...]          (default: every target)
#   FUZZ_RUNS=10000000   executions per target (libFuzzer -runs)
#   FUZZ_TIMEOUT=25      seconds one input may take before it counts as a hang
#   FUZZ_SANITIZER=none  or address (cargo fuzz --sanitizer)
#
# Without AddressSanitizer by default: the code under test is safe Rust, so
# what the run looks for is a panic (debug assertions and overflow checks
# stay on), which needs no sanitizer; ASan made the targets several times
# slower here (figures in README "Fuzzing"). FUZZ_SANITIZER=address for a
# run that also checks the unsafe code of dependencies.
#
# Installs cargo-fuzz when it is missing. cargo-fuzz needs a nightly rustc
# (-Zsanitizer=address): the nightly toolchain when rustup has one, else the
# stable one with RUSTC_BOOTSTRAP=1, which lets stable accept nightly flags
# (fine for a fuzz build that ships nowhere). Writes the seed corpus
# (fuzz/seed.py), runs each target, prints its execution count, rate and
# time, and exits non-zero on the first crash, leak or hang, naming the
# input that caused it (fuzz/artifacts/<target>/) and how to minimise it.
# The corpus grows in fuzz/corpus/<target>/ across runs; logs go to
# fuzz/logs/. Figures of the recorded run are in README "Fuzzing".
set -euo pipefail
cd "$(dirname "$0")"

runs="${FUZZ_RUNS:-10000000}"
timeout="${FUZZ_TIMEOUT:-25}"
sanitizer="${FUZZ_SANITIZER:-none}"

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz: installing cargo-fuzz"
  cargo install --locked cargo-fuzz
fi

if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
  cargo=(cargo +nightly)
  toolchain="nightly ($(rustc +nightly --version))"
else
  export RUSTC_BOOTSTRAP=1
  cargo=(cargo)
  toolchain="stable with RUSTC_BOOTSTRAP=1 ($(rustc --version))"
fi
echo "fuzz: toolchain $toolchain, sanitizer $sanitizer"

if [ "$#" -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <("${cargo[@]}" fuzz list)
fi

python3 seed.py
mkdir -p logs
summary=()
for target in "${targets[@]}"; do
  log="logs/$target-$(date -u +%Y%m%dT%H%M%SZ).log"
  echo "== fuzz $target: $runs executions, log $log"
  start=$SECONDS
  status=0
  # One worker; -print_final_stats gives the execution count at the end.
  nice -n 10 "${cargo[@]}" fuzz run --sanitizer "$sanitizer" "$target" "corpus/$target" -- \
    -runs="$runs" -timeout="$timeout" -print_final_stats=1 >"$log" 2>&1 || status=$?
  took=$((SECONDS - start))
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  if [ "$status" != 0 ]; then
    tail -40 "$log" >&2
    artifact=$(grep -o 'artifact_prefix=[^;]*; Test unit written to [^ ]*' "$log" | sed 's/.*written to //' | tail -1)
    echo "fuzz $target: FAILED (exit $status) after ${execs:-?} executions; input: ${artifact:-see $log}" >&2
    if [ -n "$artifact" ]; then
      echo "minimise: cd fuzz && ${cargo[*]} fuzz tmin --sanitizer $sanitizer $target $artifact" >&2
    fi
    exit 1
  fi
  if [ -z "$execs" ] || [ "$execs" -lt "$runs" ]; then
    echo "fuzz $target: ran ${execs:-no} executions, expected $runs (see $log)" >&2
    exit 1
  fi
  line=$(printf '%-10s %12s executions  %7s exec/s  %6ss  0 crashes  corpus %s files' \
    "$target" "$execs" "$rate" "$took" "$(find "corpus/$target" -type f | wc -l)")
  echo "-- $line"
  summary+=("$line")
done

echo
echo "== fuzz: summary ($(date -u +%Y-%m-%d), $toolchain, sanitizer $sanitizer)"
printf '%s\n' "${summary[@]}"
