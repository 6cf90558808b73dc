#!/usr/bin/env bash
# Instructions per record of the MySQL apply's client (issue 18): the e2e
# bench run under callgrind, counting only inside `run_dms_cdc` (the engine
# applying every batch: decode, plan, the source's re-queries as the client
# sees them, the build, the target's statements). The database servers run
# natively, uncounted. Repeatable within about 0.3% between runs of one
# build on a quiet machine (about 1% with other work beside it: the async
# driver's polls depend on timing), where the wall clock moves by 10% on
# this machine: the measure to compare two builds' client CPU with.
#
#   bash benches/apply-instructions.sh                 # 10 batches x 5,000 records
#   bash benches/apply-instructions.sh --batches 4 --records 2000
#   E2E_BIN=/path/to/an/e2e-binary bash benches/apply-instructions.sh   # another build
#
# Needs valgrind and what `cargo bench --bench e2e` needs (MariaDB). About
# a minute under callgrind for 50,000 records, plus the build.
set -euo pipefail
cd "$(dirname "$0")/.."
args=("$@")
if [ ${#args[@]} -eq 0 ]; then
    args=(--batches 10 --records 5000)
fi
bin="${E2E_BIN:-}"
if [ -z "$bin" ]; then
    bin=$(cargo build --release --bench e2e --message-format=json 2>/dev/null |
        python3 -c 'import json,sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "e2e" and m.get("executable"):
        print(m["executable"])')
fi
log=$(mktemp)
trap 'rm -f "$log"' EXIT
valgrind --tool=callgrind --callgrind-out-file=/dev/null --toggle-collect='*run_dms_cdc*' \
    "$bin" --bench --no-naive --rounds 1 "${args[@]}" > "$log" 2>&1 || { cat "$log"; exit 1; }
grep -E "^workload|identical|differ" "$log" || true
python3 - "$log" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
refs = int(re.search(r"I\s+refs:\s+([\d,]+)", text).group(1).replace(",", ""))
m = re.search(r"workload: (\d+) batches x (\d+) records", text)
records = int(m.group(1)) * int(m.group(2))
print(f"apply client: {refs:,} instructions, {refs / records:,.0f} per record ({records:,} records)")
PY
