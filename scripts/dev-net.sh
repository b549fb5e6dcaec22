# Sourced by demo.sh and bench-gateway: a dev chain (`blyan-node --dev`, 1 s blocks) and an IPFS
# daemon on 127.0.0.1 under a temporary directory. `dev_net_start PREFIX` sets `run_dir`, starts
# both ("$NODE" is the node binary), exports BLYAN_NODE and BLYAN_IPFS and returns once IPFS
# serves. Every PID added to `pids` is stopped when the script exits, last started first and each
# waited for (servers withdraw their announcements while the node still runs), and `run_dir` is
# removed.
pids=()
dev_net_cleanup() {
	for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
		kill "${pids[i]}" 2>/dev/null || true
		wait "${pids[i]}" 2>/dev/null || true
	done
	rm -rf "$run_dir"
}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
dev_net_start() {
	run_dir="$(mktemp -d -t "$1.XXXXXX")"
	trap dev_net_cleanup EXIT
	local rpc_port ipfs_port
	rpc_port=$(free_port)
	ipfs_port=$((20000 + RANDOM % 20000))
	export BLYAN_NODE="ws://127.0.0.1:$rpc_port" BLYAN_IPFS="http://127.0.0.1:$ipfs_port"
	"$NODE" --dev --base-path "$run_dir/node" --rpc-port "$rpc_port" --port "$(free_port)" \
		--no-prometheus --no-telemetry >"$run_dir/node.log" 2>&1 &
	pids+=($!)
	"$BLYAN_ROOT/scripts/ipfs/daemon.sh" "$run_dir/ipfs" "$ipfs_port" >"$run_dir/ipfs.log" 2>&1 &
	pids+=($!)
	for _ in $(seq 1 120); do grep -q "Daemon is ready" "$run_dir/ipfs.log" && break; sleep 0.5; done
	grep -q "Daemon is ready" "$run_dir/ipfs.log" || { cat "$run_dir/ipfs.log"; echo "IPFS did not start" >&2; exit 1; }
}
