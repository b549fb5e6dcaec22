# syntax=docker/dockerfile:1
# blyan-worker: miner, verifier, inference server and gateway. Build context: the repository root.
#   docker build -f docker/worker.Dockerfile -t blyan-worker .
# amd64 only, CPU training (the `cuda` feature needs CUDA in the image and is not built here). The
# builder stage is word for word the one in node.Dockerfile, so the two builds share its cache; the
# worker itself needs no wasm toolchain.

FROM debian:bookworm-20250520-slim AS builder
SHELL ["/bin/bash", "-o", "pipefail", "-c"]

# Unpinned Debian packages: security updates replace versions in the archive, so a pin would break
# the build at the next update; the dated base image tag is the pin.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/*

ENV RUSTUP_HOME=/usr/local/rustup \
    CARGO_HOME=/usr/local/cargo \
    PATH=/usr/local/cargo/bin:$PATH \
    CARGO_TARGET_DIR=/build/target

# scripts/setup.sh expects rustup; the checksum is the one published beside the download.
# "stable" because rust-toolchain.toml names that channel (Cargo.lock pins the crates).
ARG RUSTUP_VERSION=1.29.0
RUN url="https://static.rust-lang.org/rustup/archive/${RUSTUP_VERSION}/x86_64-unknown-linux-gnu/rustup-init" \
 && curl --proto '=https' --tlsv1.2 -fsSL -o /tmp/rustup-init "$url" \
 && curl --proto '=https' --tlsv1.2 -fsSL -o /tmp/rustup-init.sha256 "$url.sha256" \
 && echo "$(cut -d' ' -f1 /tmp/rustup-init.sha256)  /tmp/rustup-init" | sha256sum -c - \
 && chmod +x /tmp/rustup-init \
 && /tmp/rustup-init -y --no-modify-path --profile minimal --default-toolchain stable \
 && rm /tmp/rustup-init /tmp/rustup-init.sha256

# The project's own set-up: build packages, Debian's rustc-web as `debweb` and the wasm32v1-none
# sysroot for the runtime. The target cache is mounted so that a new rustc-web clears stale wasm
# builds there (setup.sh does that).
WORKDIR /src
COPY scripts/setup.sh scripts/setup.sh
RUN --mount=type=cache,id=blyan-target,target=/build/target,sharing=locked \
    BLYAN_SETUP_SKIP_JS=1 scripts/setup.sh

COPY . .
RUN --mount=type=cache,id=blyan-cargo-registry,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,id=blyan-target,target=/build/target,sharing=locked \
    cargo build --release --locked -p blyan-worker \
 && install -D -m 0755 /build/target/release/blyan-worker /out/blyan-worker


FROM debian:bookworm-20250520-slim
ARG VCS_REF=""
LABEL org.opencontainers.image.title="blyan-worker" \
      org.opencontainers.image.description="Blyan worker: trains, verifies, pins and serves models for Proof-of-Learning" \
      org.opencontainers.image.source="https://github.com/blyan-network/blyan" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.revision="${VCS_REF}" \
      org.opencontainers.image.base.name="docker.io/library/debian:bookworm-20250520-slim"

# ca-certificates: wss:// node endpoints (rustls with the system roots). curl: the health check.
# tini: `mine` sets no SIGTERM handler, and as PID 1 it would ignore the signal, so `docker stop`
# would wait out its timeout. The same fixed UID/GID (10001) as the node: the key file on the host
# must belong to it.
# Unpinned Debian packages: see the builder stage.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl tini \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --gid 10001 blyan \
 && useradd --no-log-init --uid 10001 --gid 10001 --home-dir /state --no-create-home \
      --shell /usr/sbin/nologin blyan \
 && install -d -o 10001 -g 10001 -m 0700 /state

COPY --from=builder /out/blyan-worker /usr/local/bin/blyan-worker

USER 10001:10001
# The key is a file (mode 0600, owned by 10001; the worker refuses a wider mode), by default the
# compose secret `worker_key`; --key or BLYAN_KEY override it. Prometheus metrics (jobs, earnings,
# step time, IPFS errors) for every command, on all interfaces like the node's --prometheus-external.
ENV HOME=/state \
    BLYAN_STATE_DIR=/state \
    BLYAN_KEY_FILE=/run/secrets/worker_key \
    BLYAN_METRICS_LISTEN=0.0.0.0:9616
# Salts, trained weights and progress, one directory per chain.
VOLUME ["/state"]
# The worker's metrics; `serve` (stage protocol, OpenAI API, /health, /metrics) and `gateway`
# (OpenAI API), each with `--listen 0.0.0.0:PORT` in a container: their defaults are loopback.
# `mine --fl-listen` (federated aggregation) has no default port.
EXPOSE 9616 8080 8000

# The metrics server runs as long as the command does; a worker that loses the node or IPFS for good
# exits (non-zero) instead of turning unhealthy.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["curl", "-fsS", "-o", "/dev/null", "http://127.0.0.1:9616/metrics"]

ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/bin/blyan-worker"]
CMD ["mine"]
