#!/usr/bin/env bash
# A zombienet "node" (blyan.toml): a miner. `worker.sh NODE_WS_URI`, with BLYAN_KEY,
# BLYAN_STATE_DIR and BLYAN_IPFS set. Waits for IPFS, bonds 100 BLY as a worker, then mines (the
# process zombienet stops at the end is `blyan-worker mine` itself: exec).
set -euo pipefail
export BLYAN_NODE="${1:?usage: worker.sh NODE_WS_URI}"
: "${BLYAN_KEY:?}" "${BLYAN_STATE_DIR:?}" "${BLYAN_IPFS:?}"
for _ in $(seq 1 240); do
	curl -sf -X POST "$BLYAN_IPFS/api/v0/version" >/dev/null && break
	sleep 0.5
done
curl -sf -X POST "$BLYAN_IPFS/api/v0/version" >/dev/null || { echo "IPFS at $BLYAN_IPFS did not answer" >&2; exit 4; }
blyan-worker register --bond 100
exec blyan-worker mine
