#!/usr/bin/env bash
# Runs every check and test zava-mcp has, installing what is missing first.
#
#   scripts/test.sh            formatting, lints, unit and integration tests (real PostgreSQL + pgvector)
#
# The integration tests start their own throwaway PostgreSQL clusters from the machine's PostgreSQL 15
# binaries, on free loopback ports, and delete them when they finish.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh mcp_clients redis

echo "== cargo fmt --check" >&2
cargo fmt --all -- --check
echo "== cargo clippy" >&2
cargo clippy --locked --all-targets -- -D warnings
echo "== cargo test" >&2
cargo test --locked
