#!/usr/bin/env bash
# The README's main job: the whole pipeline on this machine (see `dms-cdc demo --help`).
set -euo pipefail
cd "$(dirname "$0")/../.."
bash infra/local/install.sh
cargo run --quiet -- demo
