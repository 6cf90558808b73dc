#!/usr/bin/env bash
# The README's main job: the whole pipeline on this machine (see `dms-cdc demo --help`).
# `bash infra/local/demo.sh --target postgres` writes a PostgreSQL target instead of a MariaDB,
# `--target opensearch` a single OpenSearch node; `--source postgres` captures from a
# PostgreSQL source (logical decoding) instead of a MariaDB. Every argument goes to `dms-cdc demo`.
set -euo pipefail
cd "$(dirname "$0")/../.."
bash infra/local/install.sh
cargo run --quiet -- demo "$@"
