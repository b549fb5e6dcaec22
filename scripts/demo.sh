#!/usr/bin/env bash
# The main job: builds everything, starts a dev chain on loopback and shows blocks being produced
# and finalized and a BLY transfer with its fee. Ends by itself; exit code 0 on success.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$BLYAN_ROOT"

"$BLYAN_ROOT/scripts/setup.sh"
echo "▶ building blyan-node (the first build takes ~40 min on 2 cores)"
cargo build --locked -p blyan-node --bin blyan-node --example chain-demo
export BLYAN_NODE_BIN="$CARGO_TARGET_DIR/debug/blyan-node"
exec "$CARGO_TARGET_DIR/debug/examples/chain-demo"
