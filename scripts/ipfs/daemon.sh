#!/usr/bin/env bash
# Runs a local IPFS daemon (js-ipfs, kubo-compatible HTTP RPC) in the foreground, on loopback only
# and offline: `daemon.sh REPO_DIR API_PORT`. The RPC listens on API_PORT; the gateway, js-ipfs's
# gRPC and swarm take the next three ports. It prints "Daemon is ready" once it serves.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="${1:?usage: daemon.sh REPO_DIR API_PORT}"
port="${2:?usage: daemon.sh REPO_DIR API_PORT}"
jsipfs="$here/node_modules/.bin/jsipfs"
if [ ! -x "$jsipfs" ]; then
	echo "js-ipfs is not installed: run scripts/setup.sh (or npm ci in $here)" >&2
	exit 2
fi
mkdir -p "$repo"
export IPFS_PATH="$repo"
export NODE_OPTIONS="--require $here/polyfill.cjs"
if [ ! -f "$repo/config" ]; then
	"$jsipfs" init --profile test >/dev/null
fi
node - "$repo/config" "$port" <<'JS'
const fs = require('fs');
const [file, port] = process.argv.slice(2);
const p = Number(port);
const config = JSON.parse(fs.readFileSync(file, 'utf8'));
config.Addresses = {
  ...config.Addresses,
  API: `/ip4/127.0.0.1/tcp/${p}`,
  Gateway: `/ip4/127.0.0.1/tcp/${p + 1}`,
  RPC: `/ip4/127.0.0.1/tcp/${p + 2}`,
  Swarm: [`/ip4/127.0.0.1/tcp/${p + 3}`],
  Delegates: [],
};
config.Bootstrap = [];
config.Discovery = { ...config.Discovery, MDNS: { Enabled: false }, webRTCStar: { Enabled: false } };
fs.writeFileSync(file, JSON.stringify(config, null, 2));
JS
exec "$jsipfs" daemon --offline --enable-preload=false
