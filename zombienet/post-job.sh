#!/usr/bin/env bash
# A step of blyan.zndsl (`alice: run ./post-job.sh`): the creator's and the data owner's side, as
# in scripts/demo.sh. Alice registers a tiny Qwen3-style model (each layer pinned to IPFS), Dave
# publishes 64 KiB of generated training data, Alice posts a training job (100 BLY in escrow, her
# validation set kept in her state directory) and hands its id to the creator-alice node, which
# reveals the validation set when a miner has committed.
set -euo pipefail
: "${BLYAN_ZN_DIR:?}" "${BLYAN_ZN_RPC_PORT:?}" "${BLYAN_ZN_IPFS_PORT:?}"
export BLYAN_NODE="ws://127.0.0.1:$BLYAN_ZN_RPC_PORT" BLYAN_IPFS="http://127.0.0.1:$BLYAN_ZN_IPFS_PORT"
w() { # w KEY STATE ARGS...
	local key=$1 state=$2; shift 2
	BLYAN_KEY="$key" BLYAN_STATE_DIR="$BLYAN_ZN_DIR/state-$state" blyan-worker "$@"
}
model=$(w //Alice alice model-init --name tiny-qwen3 --arch tiny --seed 1)
echo "$model"
root_version=$(awk '{print $4}' <<<"$model")
dataset=$(w //Dave dave dataset-publish --generate 64 --seed 1 | awk '{print $2}')
echo "dataset $dataset"
posted=$(w //Alice alice job-post --base-version "$root_version" --dataset "$dataset" --reward 100 \
	--steps 60 --validation-generate 16 --validation-seed 2)
echo "$posted"
job=$(awk '/^job /{print $2}' <<<"$posted")
[ -n "$job" ] || { echo "job-post printed no job id" >&2; exit 1; }
echo "$job" >"$BLYAN_ZN_DIR/job.tmp"
mv "$BLYAN_ZN_DIR/job.tmp" "$BLYAN_ZN_DIR/job"
