#!/usr/bin/env bash
# Runs every check and test zava-mcp has, installing what is missing first.
#
#   scripts/test.sh            formatting, lints, dependency policy (cargo-deny), unit and integration tests
#                              (real PostgreSQL + pgvector, Redis, Prometheus, MCP clients) with line coverage,
#                              then the container image (scripts/container-test.sh, podman)
#
# The integration tests start their own throwaway PostgreSQL clusters from the machine's PostgreSQL 15
# binaries, on free loopback ports, and delete them when they finish. The tests run once, instrumented
# (cargo-llvm-cov with Debian's llvm-19); the line coverage must not fall below the floor in .coverage-floor,
# which only ever rises.
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

export LLVM_COV=/usr/lib/llvm-19/bin/llvm-cov LLVM_PROFDATA=/usr/lib/llvm-19/bin/llvm-profdata CARGO_LLVM_COV_SETUP=no
floor="$(tr -d '[:space:]' <.coverage-floor)"

stage "setup" scripts/setup.sh mcp_clients redis prometheus deny coverage
stage "cargo fmt --check" cargo fmt --all -- --check
stage "cargo clippy" cargo clippy --locked --workspace --all-targets -- -D warnings
stage "cargo deny" scripts/deny.sh
stage "cargo test (instrumented)" cargo llvm-cov --locked --workspace --no-report
stage "coverage (floor ${floor}% of lines)" \
    cargo llvm-cov report --summary-only --fail-under-lines "$floor"
# The container image, made from the binary the tests just built (runtime-prebuilt target), run for real.
stage "container" scripts/container-test.sh --binary target/llvm-cov-target/debug/zava-mcp
