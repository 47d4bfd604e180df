#!/usr/bin/env bash
# release.sh — build the release tarball: a stripped binary (cargo profile `dist`) with the embedding model
# beside it, the docs, and SHA-256 sums.
#
#   scripts/release.sh [OUT_DIR]     (default: target/dist)
#
# Writes OUT_DIR/zava-mcp-<version>-<target>.tar.gz and OUT_DIR/zava-mcp-<version>-<target>.tar.gz.sha256;
# inside the tarball, SHA256SUMS covers every file. The binary finds the model in models/ beside itself.
set -euo pipefail
cd "$(dirname "$0")/.."

out="${1:-target/dist}"
scripts/setup.sh >&2
cargo build --locked --profile dist --bin zava-mcp >&2

version="$(target/dist/zava-mcp --version | awk '{print $2}')"
target="$(rustc -vV | sed -n 's/^host: //p')"
name="zava-mcp-${version}-${target}"
model_dir="${ZAVA_EMBEDDING_MODEL_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/zava-mcp/models/all-MiniLM-L6-v2}"
[[ -f $model_dir/config.json ]] || { echo "release: no embedding model in $model_dir" >&2; exit 1; }

stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/$name/models"
cp target/dist/zava-mcp "$stage/$name/"
cp -r "$model_dir" "$stage/$name/models/all-MiniLM-L6-v2"
rm -f "$stage/$name/models/all-MiniLM-L6-v2/.verified"
cp README.md LICENSE CHANGELOG.md SECURITY.md "$stage/$name/"
cp -r docs deploy "$stage/$name/"
(cd "$stage/$name" && find . -type f ! -name SHA256SUMS -print0 | sort -z | xargs -0 sha256sum >SHA256SUMS)

mkdir -p "$out"
tarball="$out/$name.tar.gz"
tar -C "$stage" --owner=0 --group=0 --numeric-owner -czf "$tarball" "$name"
(cd "$out" && sha256sum "$name.tar.gz" >"$name.tar.gz.sha256")
echo "$tarball"
