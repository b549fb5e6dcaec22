#!/usr/bin/env bash
# A zombienet "node" (blyan.toml): the creator's watcher. `creator.sh NODE_WS_URI`, with BLYAN_KEY,
# BLYAN_STATE_DIR and BLYAN_IPFS set. Waits for the job that the test's post-job.sh posts (its id
# in $BLYAN_ZN_DIR/job), then follows it: reveals the validation set once a miner has committed,
# and waits for the job's end (the process zombienet stops is `blyan-worker job-watch`: exec).
set -euo pipefail
export BLYAN_NODE="${1:?usage: creator.sh NODE_WS_URI}"
: "${BLYAN_KEY:?}" "${BLYAN_STATE_DIR:?}" "${BLYAN_ZN_DIR:?}"
echo "waiting for the test to post a job ($BLYAN_ZN_DIR/job)"
until [ -s "$BLYAN_ZN_DIR/job" ]; do sleep 0.5; done
job="$(cat "$BLYAN_ZN_DIR/job")"
echo "watching job $job"
exec blyan-worker job-watch "$job"
