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

# Lints: every crate of the workspace is compiled by clippy-driver with warnings as errors
# (scripts/clippy-wrapper) in the builds the tests need anyway: the test build below (default
# features, every target) and the benchmark/try-runtime build (those features' code). A
# separate `cargo clippy` would check every dependency once more (a cold run's 16 minutes); only
# the GPU code is checked apart (below). Every cargo command of this run, the scripts' included,
# keeps the same wrapper: it is part of the workspace crates' fingerprints, and a command
# without it would compile them again.
BLYAN_CLIPPY_DRIVER="$(rustup which --toolchain stable clippy-driver)"
export BLYAN_CLIPPY_DRIVER RUSTC_WORKSPACE_WRAPPER="$BLYAN_ROOT/scripts/clippy-wrapper"

# Three builds no test needs until later, niced, in the background while the workspace's tests
# build and run (the process tests leave about one core idle, waiting on blocks), each in its own
# target directory (two cargo commands on one directory would wait on each other's lock): the
# pallets' benchmark/try-runtime tests (other features than the workspace build), the
# self-test's aarch64 build (scripts/test-cpus), and clippy's check of the GPU code.
chain_crates=(-p blyan-runtime -p pallet-model-registry -p pallet-jobs -p pallet-pol-rewards -p pallet-training-audit
	-p pallet-governance -p pallet-free-tier -p pallet-inference -p pallet-federated)
chain_target="${BLYAN_CHAIN_FEATURES_TARGET_DIR:-$HOME/.cache/blyan/target-chain-features}"
chain_tests() {
	SKIP_WASM_BUILD=1 CARGO_TARGET_DIR="$chain_target" cargo test --locked "${chain_crates[@]}" --lib \
		--features runtime-benchmarks,try-runtime "$@"
}
# The GPU code (blyan-worker/cuda-fusion): checked though no GPU runs it here, so it cannot rot
# between GPU runs (no nvcc here to ask the CUDA version). A check of blyan-ml and blyan-worker
# alone: in the workspace's build the feature would change features of dependencies the whole
# workspace shares (serde's `rc`, among others) and so compile nearly all of it again.
cuda_check() {
	env -u RUSTC_WORKSPACE_WRAPPER CUDARC_CUDA_VERSION=13000 SKIP_WASM_BUILD=1 \
		CARGO_TARGET_DIR="${BLYAN_CUDA_CHECK_TARGET_DIR:-$HOME/.cache/blyan/target-cuda-check}" \
		cargo clippy --locked -q -p blyan-ml -p blyan-worker --all-targets \
		--features blyan-worker/cuda-fusion -- -D warnings
}
side_log="$(mktemp)"
log="$(mktemp)"
# The side builds stay in this script's process group (whoever stops the run stops them too);
# if the script itself ends early, its trap stops them and everything they started.
kill_tree() { # stopped first, so that it starts no child while its children are stopped
	local child
	kill -STOP "$1" 2>/dev/null || return 0
	for child in $(pgrep -P "$1" 2>/dev/null); do kill_tree "$child"; done
	kill "$1" 2>/dev/null || true
	kill -CONT "$1" 2>/dev/null || true
}
# Only while the job still runs (once reaped, its PID may be another process's).
trap 'rm -f "$log" "$side_log"; [ -n "${side_pid:-}" ] && jobs -pr | grep -qx "$side_pid" && kill_tree "$side_pid"; true' EXIT
(
	renice -n 19 -p "$BASHPID" >/dev/null # these builds take only what the tests leave idle
	"$BLYAN_ROOT/scripts/test-cpus" --build-aarch64-only && echo "aarch64 self-test built" &&
		chain_tests --no-run -q && echo "benchmark/try-runtime tests built (and linted)" &&
		cuda_check && echo "the GPU code (blyan-worker/cuda-fusion) checked by clippy"
) </dev/null >"$side_log" 2>&1 &
side_pid=$!
wait_side_builds() {
	local rc=0
	wait "$side_pid" || rc=$?
	side_pid=
	sed 's/^/  side build: /' "$side_log"
	[ "$rc" = 0 ] || { echo "a background build failed (above)" >&2; exit 1; }
}

stage "cargo test: the build, linted (the benches too: compiled, not run)"
# The targets `cargo test` builds, then the benches (`--all-targets` would build the examples
# as tests, and `cargo test` then once more as programs). A workspace crate compiled with
# none of them linted means the wrapper did not run clippy-driver: fail rather than pass
# unlinted (a compiler it does not know, such as a RUSTC override, passes through it).
BLYAN_CLIPPY_LINTED="$(mktemp -u)"
export BLYAN_CLIPPY_LINTED
{ cargo test --workspace --locked --no-run && cargo test --workspace --locked --no-run --benches; } 2>&1 | tee "$log"
if grep -qE '^ *Compiling (blyan-|pallet-)' "$log" && [ ! -e "$BLYAN_CLIPPY_LINTED" ]; then
	echo "workspace crates were compiled, none by clippy-driver (scripts/clippy-wrapper)" >&2
	exit 1
fi
rm -f "$BLYAN_CLIPPY_LINTED"
unset BLYAN_CLIPPY_LINTED

stage "cargo test: the tests"
# Each test binary's start, timed (where a run's minutes go).
cargo test --workspace --locked "$@" 2>&1 | tee -a "$log" |
	while IFS= read -r line; do
		case "$line" in *" Running "* | *" Doc-tests "*) echo "[$((SECONDS / 60)) min] $line" ;; *) printf '%s\n' "$line" ;; esac
	done
# A backstop for the wrapper: a workspace crate compiled without it would warn instead of
# failing (cargo replays the warnings of cached crates).
if grep -E '^warning: `[^`]+` \([^)]*\) generated [0-9]+ warnings?' "$log"; then
	echo "the build has warnings (above): it was not linted" >&2
	exit 1
fi

stage "the side builds' end (aarch64 self-test, benchmark/try-runtime tests, GPU code check)"
wait_side_builds
stage "the miner self-test across CPUs: threads, qemu x86-64 (no AVX; AVX without FMA), qemu aarch64"
"$BLYAN_ROOT/scripts/test-cpus" 2>&1 | tee -a "$log"

stage "benchmarks of the protocol pallets and the try-runtime checks, on the native runtime"
# One build with both features (built in the background above): every benchmark runs once as a
# test, and the runtime's try-runtime checks (`try_runtime` tests).
chain_tests -- benchmarking try_runtime 2>&1 | tee -a "$log"
stage "docker files: hadolint and the compose file (no Docker engine here to build them)"
"$BLYAN_ROOT/scripts/lint-docker"

stage "zombienet: three validators, IPFS and two miners (zombienet/blyan.zndsl)"
"$BLYAN_ROOT/scripts/zombienet" 2>&1 | tee -a "$log" | grep -E "✅|❌|Result:|exited with" || true
grep -q "exited with 0" "$log" || { echo "zombienet test failed" >&2; exit 1; }

stage "all stages passed"
# One closing line over every test binary.
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($i ~ /^passed/) p += $(i-1); if ($i ~ /^failed/) f += $(i-1) } }
     END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
