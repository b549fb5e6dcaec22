#!/usr/bin/env bash
# A step of blyan.zndsl (`alice: run ./worker-metrics.sh`): reads both miners' Prometheus metrics
# (`blyan-worker --metrics-listen`) and checks that between them one job was claimed, committed
# and revealed, that its training steps were timed, and that no IPFS call failed.
set -euo pipefail
: "${BLYAN_ZN_METRICS_EVE:?}" "${BLYAN_ZN_METRICS_FERDIE:?}"
# Polled: the chain may show the reveal a moment before the miner has counted it.
for _ in $(seq 1 60); do
	metrics=""
	for port in "$BLYAN_ZN_METRICS_EVE" "$BLYAN_ZN_METRICS_FERDIE"; do
		metrics+="$(curl -sf "http://127.0.0.1:$port/metrics")"$'\n'
	done
	sum() { awk -v m="$1" '$1 == m {s += $2} END {print s + 0}' <<<"$metrics"; }
	ipfs_errors=$(awk '$1 ~ /^blyan_worker_ipfs_errors_total/ {s += $2} END {print s + 0}' <<<"$metrics")
	claimed=$(sum blyan_worker_jobs_claimed_total)
	committed=$(sum blyan_worker_results_committed_total)
	revealed=$(sum blyan_worker_results_revealed_total)
	steps=$(sum blyan_worker_train_step_seconds_count)
	if [ "$claimed" -ge 1 ] && [ "$committed" -ge 1 ] && [ "$revealed" -ge 1 ] && [ "$steps" -ge 59 ]; then
		break
	fi
	sleep 0.5
done
echo "miners' metrics: claimed $claimed, committed $committed, revealed $revealed, training steps timed $steps, IPFS errors $ipfs_errors"
[ "$claimed" -ge 1 ] && [ "$committed" -ge 1 ] && [ "$revealed" -ge 1 ] && [ "$steps" -ge 59 ] && [ "$ipfs_errors" -eq 0 ]
