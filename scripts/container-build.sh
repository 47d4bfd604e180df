#!/usr/bin/env bash
# container-build.sh — the Dockerfile's full multi-stage build (the binary compiled inside), on a machine that
# reaches no image registry.
#
#   scripts/container-build.sh [--tag IMAGE] [--clean]     (default tag: localhost/zava-mcp:latest)
#
# With a registry none of this is needed: `podman build --format docker -t zava-mcp .` (or `docker build`) pulls
# rust:1.95-slim-bookworm and debian:bookworm-slim. Here the script makes both base images first:
#   1. debian:bookworm-slim with debootstrap (scripts/setup.sh --only podman container_base);
#   2. a builder standing in for rust:<version>-slim-bookworm: that base plus this machine's Rust toolchain
#      (`rustc --print sysroot`, without its documentation) in /usr/local/rust, CARGO_HOME=/usr/local/cargo,
#      tagged localhost/zava-rust:<major.minor>;
#   3. `podman build --build-arg RUST_IMAGE=localhost/zava-rust:<major.minor>`, niced, timed. The build stage
#      installs its tools with apt and downloads the crates and the model's wheel from the registries, trusting
#      the extra CA certificates of this machine (ZAVA_BUILD_CA_DIR, default /usr/local/share/ca-certificates)
#      when there are any.
# --clean removes the builder image and the build's intermediate images afterwards (the image stays).
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$PWD"

tag=localhost/zava-mcp:latest
clean=0
while [[ $# -gt 0 ]]; do
    case $1 in
        --tag) tag="${2:?--tag needs an image name}"; shift 2 ;;
        --clean) clean=1; shift ;;
        -h|--help) awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"; exit 0 ;;
        *) echo "container-build: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
say() { printf 'container-build: %s\n' "$*" >&2; }
export CONTAINERS_CONF="${CONTAINERS_CONF:-${repo}/scripts/containers.conf}"

scripts/setup.sh --only podman container_base

sysroot="$(rustc --print sysroot)"
rust_version="$(rustc --version | awk '{print $2}')"
builder="localhost/zava-rust:${rust_version%.*}"
if ! podman image exists "$builder"; then
    say "making ${builder} from ${sysroot} (rustc ${rust_version})..."
    ctr="$(buildah from --pull=never docker.io/library/debian:bookworm-slim)"
    trap 'buildah rm "$ctr" >/dev/null 2>&1 || true' EXIT
    for part in bin lib libexec etc; do
        [[ -d ${sysroot}/${part} ]] && buildah copy --quiet "$ctr" "${sysroot}/${part}" "/usr/local/rust/${part}" >/dev/null
    done
    buildah config --env CARGO_HOME=/usr/local/cargo \
        --env PATH=/usr/local/cargo/bin:/usr/local/rust/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        --cmd bash "$ctr"
    buildah commit --quiet --rm "$ctr" "$builder" >/dev/null
    trap - EXIT
    say "${builder}: $(podman image inspect --format '{{.Size}}' "$builder" | awk '{printf "%d MB", $1/1e6}')"
fi

# The CA certificates this machine trusts beyond Debian's (a TLS-intercepting proxy's), for the build stage's
# downloads (pip, crates.io); see the Dockerfile's build stage.
ca_dir="${ZAVA_BUILD_CA_DIR:-/usr/local/share/ca-certificates}"
extra=()
if compgen -G "${ca_dir}/*.crt" >/dev/null; then
    extra+=(--volume "${ca_dir}:/run/extra-ca:ro")
fi

say "building ${tag} (the full multi-stage build; niced)..."
start=$SECONDS
nice -n 19 podman build --format docker --pull=never --network host "${extra[@]}" \
    --build-arg "RUST_IMAGE=${builder}" -t "$tag" -f Dockerfile . \
    2> >(grep -v 'unable to get systemd connection' >&2)
elapsed=$((SECONDS - start))
size="$(podman image inspect --format '{{.Size}}' "$tag" | awk '{printf "%d MB", $1/1e6}')"
say "built ${tag} in $((elapsed / 60)) min $((elapsed % 60)) s; image size ${size}"
podman run --rm --pull=never "$tag" --version 2> >(grep -v 'unable to get systemd connection' >&2)

if [[ $clean -eq 1 ]]; then
    podman rmi "$builder" >/dev/null 2>&1 || true
    podman image prune -f >/dev/null
    podman rmi "$builder" >/dev/null 2>&1 || true
    say "removed ${builder} and the intermediate images"
fi
