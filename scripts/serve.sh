#!/usr/bin/env bash
# Serves zava-mcp on the embedded default, installing what is missing first.
#
#   scripts/serve.sh [serve options]
#
# On first run this builds zava-mcp, creates a PostgreSQL cluster in ./.zava, loads the full Zava dataset,
# and serves. Later runs reuse all of it. Set DATABASE_URL to use an existing PostgreSQL server instead.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
echo "serve: building zava-mcp (the first build takes a few minutes)" >&2
cargo build --release --locked
exec target/release/zava-mcp serve "$@"
