#!/usr/bin/env bash
# Runs every check and test zava-mcp has, installing what is missing first.
#
#   scripts/test.sh            formatting, lints, unit and integration tests (real PostgreSQL + pgvector)
#
# The integration tests start their own throwaway PostgreSQL clusters from the machine's PostgreSQL 15
# binaries, on free loopback ports, and delete them when they finish.
set -euo pipefail
cd "$(dirname "$0")/.."

# Each stage says how long it took, so a slow CI run shows where the time went.
stage() {
    local name=$1 start=$SECONDS
    shift
    echo "== $name" >&2
    "$@"
    echo "== $name: $((SECONDS - start)) s" >&2
}

stage "setup" scripts/setup.sh mcp_clients redis prometheus
stage "cargo fmt --check" cargo fmt --all -- --check
stage "cargo clippy" cargo clippy --locked --all-targets -- -D warnings
stage "cargo test" cargo test --locked
