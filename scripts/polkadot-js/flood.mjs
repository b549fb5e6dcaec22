// A bounded flood of job postings and receipt settlements against a dev node, from @polkadot/api
// the way a wallet or a worker submits: explicit nonces, every transaction watched.
//
//   node flood.mjs ws://127.0.0.1:9944 [JOBS_PER_CREATOR] [SETTLEMENTS_PER_SERVER]
//
// Alice, Bob and Charlie each post JOBS_PER_CREATOR jobs; Dave, Eve and Ferdie each settle
// SETTLEMENTS_PER_SERVER batches of 16 receipts signed by Alice, Bob and Charlie, all submitted
// as fast as the pool takes them. A transaction the pool refuses as full (1014/1016) is signed
// again and retried after 50 ms. One it accepted and later dropped (its limit enforcement evicts
// an accepted transaction for a better one — here the light job postings win over the heavy
// settlements — and says so to the watcher), or that stays unincluded for STALL_MS, is sent again
// with a tip one planck higher, as a wallet's "speed up" does. Meanwhile a second connection
// measures `system_health` latency and the pool's size.
//
// Prints one JSON line: counts, timings and the chain's state afterwards. Exits non-zero if a
// transaction is refused for another reason or the whole flood is not in blocks within LIMIT_MS.
import { ApiPromise, WsProvider } from '@polkadot/api';
import { Keyring } from '@polkadot/keyring';
import { stringToU8a, u8aConcat } from '@polkadot/util';
import { cryptoWaitReady } from '@polkadot/util-crypto';

const url = process.argv[2] ?? 'ws://127.0.0.1:9944';
const JOBS = Number(process.argv[3] ?? 60);
const SETTLEMENTS = Number(process.argv[4] ?? 60);
const RECEIPTS = 16;
const LIMIT_MS = 240_000;
const STALL_MS = 20_000;
const fail = (m) => {
  console.error(`FAIL ${m}`);
  process.exit(1);
};
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

await cryptoWaitReady();
const api = await ApiPromise.create({ provider: new WsProvider(url), noInitWarn: true });
const probe = await ApiPromise.create({ provider: new WsProvider(url), noInitWarn: true });
const keyring = new Keyring({ type: 'sr25519' });
const key = (name) => keyring.addFromUri(`//${name}`);
const [alice, bob, charlie, dave, eve, ferdie] = ['Alice', 'Bob', 'Charlie', 'Dave', 'Eve', 'Ferdie'].map(key);

// Waits until `tx` (signed by `who`) is in a block; fails on any error.
function included(tx, who, label) {
  return new Promise((resolve) => {
    tx.signAndSend(who, { nonce: -1 }, ({ status, dispatchError }) => {
      if (dispatchError) fail(`${label}: ${dispatchError.toString()}`);
      if (status.isInBlock) resolve();
    }).catch((e) => fail(`${label}: ${e.message ?? e}`));
  });
}

// A model whose root version (0) jobs start from, and a dataset (0) — unless a run before made them.
if ((await api.query.registry.versions(0)).isNone) {
  const root = (layer) => ({ layer, cid: 'bafyroot', merkleRoot: '0x' + '00'.repeat(32) });
  await included(
    api.tx.registry.registerModel('load', { family: 'mlp', configHash: '0x' + '01'.repeat(32), configCid: 'bafyconfig', layerCount: 2 },
      'MIT', { major: 1, minor: 0, patch: 0 }, [root(0), root(1)], '0x' + '02'.repeat(32)),
    alice, 'registerModel');
  await included(api.tx.registry.registerDataset('bafydata', '0x' + '03'.repeat(32), 1 << 20, 'MIT'), ferdie, 'registerDataset');
}
const genesis = api.genesisHash.toU8a();
const best = (await api.rpc.chain.getHeader()).number.toNumber();
const jobsBefore = (await api.query.jobs.nextJobId()).toNumber();

const postJob = (i) => api.tx.jobs.postJob({
  baseVersion: 0, dataset: 0, validationCommitment: '0x' + (i % 256).toString(16).padStart(2, '0').repeat(32),
  training: {
    steps: 60, batchSize: 8, seqLen: 64, learningRate: 3_000_000, weightDecay: 0, evalBatches: 16,
    schedule: { warmupSteps: 0, cosineMinRatio: null, maxGradNormMillis: null, microBatches: 1 },
    lora: null,
  },
  seed: i, backend: 'Cpu', minMemoryMb: 1024, deadline: best + 10_000, lease: 300,
  minImprovement: null,
}, 1_000_000_000_000n);

// Receipts carry increasing nonces from where this (client, server) pair last settled.
const receiptType = api.tx.inference.settle.meta.args[0].type.toString().replace(/^Vec<(.*)>$/, '$1');
async function settlements(server, client) {
  const last = (await api.query.inference.settledNonce(client.address, server.address)).unwrapOrDefault().toNumber();
  return Array.from({ length: SETTLEMENTS }, (_, b) => {
    const receipts = Array.from({ length: RECEIPTS }, (_, k) => {
      const receipt = {
        client: client.address, server: server.address, version: 0, nonce: last + b * RECEIPTS + k + 1,
        tokensIn: 10, tokensOut: 10, pricePerToken: 1000, free: false,
      };
      const encoded = api.createType(receiptType, { receipt, signature: { Sr25519: new Uint8Array(64) } }).receipt.toU8a();
      const payload = u8aConcat(stringToU8a('blyan/receipt'), genesis, encoded);
      return { receipt, signature: { Sr25519: client.sign(payload) } };
    });
    return api.tx.inference.settle(receipts);
  });
}

const stats = { accepted: 0, refusedFull: 0, droppedAfterAcceptance: 0, stalled: 0, submitMs: [], probeMs: [], maxPool: 0 };
const started = Date.now();
let flooding = true;

// One account's submitter: every call in nonce order; resolves once all are in blocks.
async function flood(who, calls) {
  let nonce = (await api.rpc.system.accountNextIndex(who.address)).toNumber();
  const inBlock = [];
  for (const call of calls) {
    const n = nonce++;
    // Sends `call` at nonce `n` until the pool takes it; then `{ done }` resolves when it is in a
    // block (wrapped: an async function would wait for a returned promise).
    let tip = 0;
    const send = async () => {
      for (;;) {
        if (Date.now() - started > LIMIT_MS) fail(`${who.address} nonce ${n}: the pool never took it`);
        let settle;
        const outcome = new Promise((resolve) => { settle = resolve; });
        const t = Date.now();
        try {
          await call.signAndSend(who, { nonce: n, tip }, ({ status }) => {
            if (process.env.FLOOD_DEBUG) console.error(`${who.address.slice(0, 6)} ${n} ${status.type}`);
            if (status.isInBlock || status.isFinalized) settle('in block');
            else if (status.isDropped || status.isInvalid || status.isUsurped) settle(status.type);
          });
        } catch (e) {
          const m = e.message ?? String(e);
          if (/1014|1016|full|Priority is too low|1012|banned/.test(m)) {
            stats.refusedFull += 1;
            await sleep(50);
            continue;
          }
          // An earlier try of this nonce is already in (its answer raced this one).
          if (/1010|outdated|Stale/.test(m)) return { done: Promise.resolve() };
          fail(`${who.address} nonce ${n}: ${m}`);
        }
        stats.accepted += 1;
        stats.submitMs.push(Date.now() - t);
        const watched = Promise.race([outcome, sleep(STALL_MS).then(() => 'stalled')]);
        const done = watched.then(async (end) => {
          if (end === 'in block') return;
          if (end === 'stalled') stats.stalled += 1;
          else stats.droppedAfterAcceptance += 1;
          tip += 1;
          await (await send()).done;
        });
        return { done };
      }
    };
    inBlock.push((await send()).done);
  }
  // `send` resolved once accepted; wait for the blocks.
  await Promise.all(inBlock);
}

const prober = (async () => {
  while (flooding) {
    const t = performance.now();
    await probe.rpc.system.health();
    stats.probeMs.push(performance.now() - t);
    const pending = await probe.rpc.author.pendingExtrinsics();
    stats.maxPool = Math.max(stats.maxPool, pending.length);
    await sleep(50);
  }
})();

const work = [
  ...[alice, bob, charlie].map((who) => flood(who, Array.from({ length: JOBS }, (_, i) => postJob(i)))),
  ...await Promise.all([[dave, alice], [eve, bob], [ferdie, charlie]].map(async ([server, client]) => flood(server, await settlements(server, client)))),
];
await Promise.all(work);
const includedMs = Date.now() - started;
flooding = false;
await prober;

const settled = {};
for (const [server, client, name] of [[dave, alice, 'dave'], [eve, bob, 'eve'], [ferdie, charlie, 'ferdie']]) {
  settled[name] = (await api.query.inference.settledNonce(client.address, server.address)).unwrapOrDefault().toNumber();
}
const pct = (xs, p) => { const s = [...xs].sort((a, b) => a - b); return s[Math.round((s.length - 1) * p)] ?? 0; };
console.log(JSON.stringify({
  accepted: stats.accepted,
  refusedFull: stats.refusedFull,
  droppedAfterAcceptance: stats.droppedAfterAcceptance,
  stalled: stats.stalled,
  includedMs,
  jobsPosted: (await api.query.jobs.nextJobId()).toNumber() - jobsBefore,
  settled,
  submitP50: pct(stats.submitMs, 0.5), submitP99: pct(stats.submitMs, 0.99),
  probeP50: pct(stats.probeMs, 0.5), probeP99: pct(stats.probeMs, 0.99), probeMax: pct(stats.probeMs, 1), probes: stats.probeMs.length,
  maxPool: stats.maxPool,
}));
await api.disconnect();
await probe.disconnect();
process.exit(0);
