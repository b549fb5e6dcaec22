#!/usr/bin/env bash
# The test command (README, .ci/run): set-up, formatting, lints, then every test of the workspace:
# runtime tests on the native runtime, and process tests against the real blyan-node binary.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$BLYAN_ROOT"

# Each stage's heading says when it began (minutes into the run): where a cold run's time goes.
stage() { echo "== $* [$((SECONDS / 60)) min]"; }

"$BLYAN_ROOT/scripts/setup.sh"

stage "cargo fmt --check"
cargo fmt --all --check

stage "cargo clippy (warnings are errors)"
# Lints native code; the wasm runtime is built (and tested) by the test step. Under clippy the
# wasm builder's inner cargo would inherit clippy-driver, which has no wasm sysroot.
# One pass with every feature CI builds: the GPU code (`cuda-fusion`: builds here though no GPU
# runs it, so it cannot rot between GPU runs; no nvcc here to ask the CUDA version), the pallets'
# benchmarks and the try-runtime checks. Each further pass with other features would check most
# dependencies again (a cold run's minutes).
CUDARC_CUDA_VERSION=13000 SKIP_WASM_BUILD=1 cargo clippy --workspace --all-targets --locked \
	--features blyan-worker/cuda-fusion,blyan-node/runtime-benchmarks,blyan-node/try-runtime -- -D warnings

stage "cargo test"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
cargo test --workspace --locked "$@" 2>&1 | tee "$log"
# Clippy saw every crate with the CI features on; code behind `not(feature = ...)` is compiled
# only here, so its compiler warnings fail the run too (cargo replays those of cached crates).
if grep -E '^warning: `[^`]+` \([^)]*\) generated [0-9]+ warnings?' "$log"; then
	echo "the default-feature build has warnings (above)" >&2
	exit 1
fi

stage "the miner self-test across CPUs: threads, qemu x86-64 (no AVX; AVX without FMA), qemu aarch64"
"$BLYAN_ROOT/scripts/test-cpus" 2>&1 | tee -a "$log"

stage "benchmarks of the protocol pallets and the try-runtime checks, on the native runtime"
# One build with both features (each alone would build the runtime and pallets once more): every
# benchmark runs once as a test, and the runtime's try-runtime checks (`try_runtime` tests).
chain_crates=(-p blyan-runtime -p pallet-model-registry -p pallet-jobs -p pallet-pol-rewards -p pallet-training-audit
	-p pallet-governance -p pallet-free-tier -p pallet-inference -p pallet-federated)
SKIP_WASM_BUILD=1 cargo test --locked "${chain_crates[@]}" --lib --features runtime-benchmarks,try-runtime \
	-- benchmarking try_runtime 2>&1 | tee -a "$log"
stage "docker files: hadolint and the compose file (no Docker engine here to build them)"
"$BLYAN_ROOT/scripts/lint-docker"

stage "zombienet: three validators, IPFS and two miners (zombienet/blyan.zndsl)"
"$BLYAN_ROOT/scripts/zombienet" 2>&1 | tee -a "$log" | grep -E "✅|❌|Result:|exited with" || true
grep -q "exited with 0" "$log" || { echo "zombienet test failed" >&2; exit 1; }

stage "all stages passed"
# One closing line over every test binary.
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($i ~ /^passed/) p += $(i-1); if ($i ~ /^failed/) f += $(i-1) } }
     END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
