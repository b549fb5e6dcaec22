# syntax=docker/dockerfile:1
# blyan-node, the validator. Build context: the repository root.
#   docker build -f docker/node.Dockerfile --build-arg VCS_REF="$(git rev-parse --short=11 HEAD)" -t blyan-node .
# amd64 only, like scripts/setup.sh. Builder and runtime are the same Debian build as the
# development machines (12.11), so the binary runs against the glibc and OpenSSL it was linked with.
# The builder stage is word for word the one in worker.Dockerfile: the two builds share its cache.

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
# Without .git in the context the commit comes from the build argument (Substrate's version string).
ARG VCS_REF=""
RUN --mount=type=cache,id=blyan-cargo-registry,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,id=blyan-target,target=/build/target,sharing=locked \
    SUBSTRATE_CLI_GIT_COMMIT_HASH="$VCS_REF" cargo build --release --locked -p blyan-node \
 && install -D -m 0755 /build/target/release/blyan-node /out/blyan-node


FROM debian:bookworm-20250520-slim
ARG VCS_REF=""
LABEL org.opencontainers.image.title="blyan-node" \
      org.opencontainers.image.description="Blyan validator node: BABE block production, GRANDPA finality, the Proof-of-Learning runtime" \
      org.opencontainers.image.source="https://github.com/blyan-network/blyan" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.revision="${VCS_REF}" \
      org.opencontainers.image.base.name="docker.io/library/debian:bookworm-20250520-slim"

# libssl3: the node links the system OpenSSL (.cargo/config.toml). curl: the health check.
# tini: PID 1 forwards signals and reaps children. A fixed UID/GID (10001) so volume and secret
# ownership can be set on the host.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl libssl3 tini \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --gid 10001 blyan \
 && useradd --no-log-init --uid 10001 --gid 10001 --home-dir /data --no-create-home \
      --shell /usr/sbin/nologin blyan \
 && install -d -o 10001 -g 10001 -m 0700 /data

COPY --from=builder /out/blyan-node /usr/local/bin/blyan-node

USER 10001:10001
ENV HOME=/data
# Base path: the database, the keystore and the network key.
VOLUME ["/data"]
# p2p, JSON-RPC (HTTP and WebSocket), Prometheus.
EXPOSE 30333 9944 9615

# Substrate's RPC server answers GET /health (system_health) on the RPC port.
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
  CMD ["curl", "-fsS", "-o", "/dev/null", "http://127.0.0.1:9944/health"]

ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/bin/blyan-node"]
# A one-node development chain kept in /data, reachable from outside the container with safe RPC
# methods only. For a real chain, replace all of it: --chain, --validator, --name, bootnodes…
CMD ["--dev", "--base-path", "/data", \
     "--rpc-external", "--rpc-methods", "safe", "--rpc-cors", "http://localhost:3000,https://polkadot.js.org", \
     "--prometheus-external"]
