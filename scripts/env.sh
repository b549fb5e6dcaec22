# Sourced by the other scripts: where builds go and how the runtime wasm is built.
# A stable target dir outside the clone lets CI and fresh clones reuse one build.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/blyan/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-auto}"
BLYAN_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export BLYAN_ROOT
