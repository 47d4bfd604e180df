#!/usr/bin/env bash
# deny.sh — cargo-deny's checks (licences, bans, sources, advisories) with no network.
#
# The RustSec advisory database comes from the snapshot beside the repository (../shared/rustsec-advisory-db,
# or ZAVA_ADVISORY_DB): cargo-deny reads it only as a git repository, so it is copied to
# target/advisory-db/advisory-db-3157b0e258782691 (the name cargo-deny derives from the default URL) and
# committed there at the snapshot's own date, so cargo-deny judges its age honestly (deny.toml allows for it).
# cargo-deny itself is installed by `scripts/setup.sh deny`.
set -euo pipefail
cd "$(dirname "$0")/.."

SNAPSHOT_DIR="${ZAVA_ADVISORY_DB:-../shared/rustsec-advisory-db}"
SNAPSHOT_NOTE="${SNAPSHOT_DIR%/}.SNAPSHOT"
DB_DIR=target/advisory-db/advisory-db-3157b0e258782691

[[ -d $SNAPSHOT_DIR/crates ]] || { echo "deny: no advisory database at $SNAPSHOT_DIR (set ZAVA_ADVISORY_DB)" >&2; exit 1; }
# The snapshot's date, from its note ("... (YYYY-MM-DD) ..."); the copy's commit carries it.
snapshot_date="$(grep -o '([0-9]\{4\}-[0-9]\{2\}-[0-9]\{2\})' "$SNAPSHOT_NOTE" 2>/dev/null | head -1 | tr -d '()')"
[[ -n $snapshot_date ]] || { echo "deny: cannot read the snapshot date from $SNAPSHOT_NOTE" >&2; exit 1; }
stamp="$DB_DIR/.snapshot"
if [[ ! -f $stamp || $(cat "$stamp") != "$snapshot_date $(realpath "$SNAPSHOT_DIR")" ]]; then
    rm -rf "$DB_DIR"
    mkdir -p "$DB_DIR"
    cp -r "$SNAPSHOT_DIR"/. "$DB_DIR"/
    (
        cd "$DB_DIR"
        export GIT_AUTHOR_DATE="${snapshot_date}T00:00:00Z" GIT_COMMITTER_DATE="${snapshot_date}T00:00:00Z"
        git init -q -b main
        git add -A
        git -c user.name=zava-mcp -c user.email=ci@zava.invalid commit -qm "RustSec advisory-db snapshot $snapshot_date"
    )
    echo "$snapshot_date $(realpath "$SNAPSHOT_DIR")" >"$stamp"
fi
# cargo-deny reads `cargo metadata` for every target, so the crates of other platforms in Cargo.lock (wasm,
# Android, Windows), which no build here downloads, must be in the local registry: fetch them (a no-op when
# they are), then check without the network.
cargo fetch --locked --quiet
exec cargo deny --offline check "$@"
