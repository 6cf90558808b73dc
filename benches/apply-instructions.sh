#!/usr/bin/env bash
# Instructions per record of the apply's client (issue 18): an e2e bench
# run under callgrind, counting only the engine's work (decode, plan, the
# source's re-queries as the client sees them, the build, the target's
# statements). The database servers run natively, uncounted. Repeatable
# within about 0.3% between runs of one build on a quiet machine (about 1%
# with other work beside it: the async drivers' polls depend on timing),
# where the wall clock moves by 10% on this machine: the measure to compare
# two builds' client CPU with.
#
# MySQL target (`benches/e2e.rs`, counted inside `run_dms_cdc`):
#   bash benches/apply-instructions.sh                 # 10 batches x 5,000 records
#   bash benches/apply-instructions.sh --batches 4 --records 2000
#   E2E_BIN=/path/to/an/e2e-binary bash benches/apply-instructions.sh   # another build
# PostgreSQL target (`benches/e2e_postgres.rs`, counted inside `run_dms_cdc`, as for
# MySQL: the full load of the initial state, which goes through the same
# `Engine::process`, is not counted):
#   bash benches/apply-instructions.sh --postgres      # 10 batches x 5,000 records
#   E2E_BIN=/path/to/an/e2e_postgres-binary bash benches/apply-instructions.sh --postgres
#
# Needs valgrind and what the bench needs (MariaDB; PostgreSQL too with
# --postgres). About a minute under callgrind for 50,000 records, plus the
# build.
set -euo pipefail
cd "$(dirname "$0")/.."
bench=e2e
toggle='*run_dms_cdc*'
if [ "${1:-}" = "--postgres" ]; then
    shift
    bench=e2e_postgres
fi
args=("$@")
if [ ${#args[@]} -eq 0 ]; then
    args=(--batches 10 --records 5000)
fi
if [ "$bench" = e2e ]; then
    args=(--no-naive "${args[@]}")
fi
bin="${E2E_BIN:-}"
if [ -z "$bin" ]; then
    bin=$(cargo build --release --bench "$bench" --message-format=json 2>/dev/null |
        python3 -c 'import json,sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == sys.argv[1] and m.get("executable"):
        print(m["executable"])' "$bench")
fi
log=$(mktemp)
trap 'rm -f "$log"' EXIT
valgrind --tool=callgrind --callgrind-out-file=/dev/null --toggle-collect="$toggle" \
    "$bin" --bench --rounds 1 "${args[@]}" > "$log" 2>&1 || { cat "$log"; exit 1; }
grep -E "^workload|identical|differ|same target" "$log" || true
python3 - "$log" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
refs = int(re.search(r"I\s+refs:\s+([\d,]+)", text).group(1).replace(",", ""))
m = re.search(r"workload: (\d+) batches x (\d+) records", text)
records = int(m.group(1)) * int(m.group(2))
if refs < 1000 * records:
    # The counted function was inlined away (callgrind found nothing to count).
    sys.exit(f"apply client: only {refs:,} instructions counted for {records:,} records: the toggle found no run")
print(f"apply client: {refs:,} instructions, {refs / records:,.0f} per record ({records:,} records)")
PY
