// Governance driven from @polkadot/api alone, against a dev node (whose genesis preset shortens the
// referendum periods to blocks):
//
//   node governance.mjs ws://127.0.0.1:9944 path/to/upgraded_runtime.wasm
//
// 1. On the `parameters` track, a referendum to set MinImprovement to 2 %: Alice notes the call's
//    preimage, submits and places the decision deposit; Alice and Bob vote aye with conviction,
//    their BLY locked (not spent); it passes, is enacted, and `jobs.params` shows 2 %.
// 2. At the same time, a referendum to set CommitteeSize to 17 (above its bound of 16): it passes,
//    but its enactment is refused with `governance.AboveMaximum` and the committee size is unchanged.
// 3. On the `root` track, a runtime upgrade (`system.setCode` with the given wasm): once enacted
//    the live node reports a higher `specVersion`, and a transfer signed afterwards is included.
//
// Prints what happens and exits non-zero on the first thing that does not go as described.
import { readFileSync } from 'node:fs';
import { ApiPromise, WsProvider } from '@polkadot/api';
import { Keyring } from '@polkadot/keyring';
import { Metadata, TypeRegistry } from '@polkadot/types';
import { submitOrFail } from './submit.mjs';

// Every event of every new block (filled below), kept for the checks and for failure reports.
const seen = [];
const url = process.argv[2] ?? 'ws://127.0.0.1:9944';
const wasmPath = process.argv[3];
const BLY = 10n ** 12n;
const PERBILL = 1_000_000_000n;

function fail(message) {
  // What the chain did meanwhile, to see why.
  for (const { block, event } of seen) {
    if (['scheduler', 'referenda', 'preimage'].includes(event.section) || event.method === 'CodeUpdated') {
      console.error(`  #${block} ${event.section}.${event.method} ${JSON.stringify(event.data.toHuman())}`);
    }
  }
  console.error(`FAIL ${message}`);
  process.exit(1);
}
function log(message) {
  console.log(message);
}

const provider = new WsProvider(url);
const api = await ApiPromise.create({ provider, noInitWarn: true });
const keyring = new Keyring({ type: 'sr25519' });
const alice = keyring.addFromUri('//Alice');
const bob = keyring.addFromUri('//Bob');
const charlie = keyring.addFromUri('//Charlie');

// Every event of every new block, kept for the checks below. A block's events were written by the
// runtime in its parent's state (the block that enacts `setCode` still ran the old one), so they are
// decoded with that runtime's metadata, in registries of our own, one per spec version:
// @polkadot/api switches its default registry to the new metadata in place when the chain upgrades,
// and a query it decorated just before the switch (and caches for that block) can then no longer
// decode the upgrade block's events ("Unable to decode storage system.events", seen in CI).
const registries = new Map();
function registryOf(parentHash) {
  return provider.send('state_getRuntimeVersion', [parentHash]).then(({ specVersion }) => {
    if (!registries.has(specVersion)) {
      registries.set(
        specVersion,
        provider.send('state_getMetadata', [parentHash]).then((hex) => {
          const registry = new TypeRegistry();
          registry.setMetadata(new Metadata(registry, hex));
          return registry;
        }),
      );
    }
    return registries.get(specVersion);
  });
}
const eventsKey = api.query.system.events.key();
await api.rpc.chain.subscribeNewHeads(async (header) => {
  const number = header.number.toNumber();
  try {
    const registry = await registryOf(header.parentHash.toHex());
    const raw = await provider.send('state_getStorage', [eventsKey, header.hash.toHex()]);
    const events = registry.createType('Vec<FrameSystemEventRecord>', raw ?? '0x00');
    for (const { event } of events) seen.push({ block: number, event });
  } catch (e) {
    log(`events of block #${number} could not be decoded: ${e.message.split('\n')[0].slice(0, 160)}`);
  }
});

const timings = (await api.query.governance.timings()).toJSON();
log(`referendum periods (blocks): ${JSON.stringify(timings)}`);

// --- 1 and 2: two referenda on the parameters track, decided side by side.
const before = (await api.query.polRewards.params()).committeeSize.toNumber();
const good = await propose(
  api.tx.governance.setParameter({ MinImprovement: (2n * PERBILL) / 100n }),
  { Governance: 'ParameterAdmin' },
  'MinImprovement = 2 %',
);
const bad = await propose(
  api.tx.governance.setParameter({ CommitteeSize: 17 }),
  { Governance: 'ParameterAdmin' },
  'CommitteeSize = 17',
);
// An escalation attempt: the weaker parameters track voting the mining pool's budget up a thousandfold.
const budgetBefore = (await api.query.polRewards.params()).epochBudget.toBigInt();
const escalate = await propose(
  api.tx.governance.setParameter({ EpochBudget: budgetBefore * 1000n }),
  { Governance: 'ParameterAdmin' },
  'EpochBudget x1000 on the parameters track',
);
for (const [index, who] of [[good, alice], [good, bob], [bad, alice], [escalate, alice]]) {
  await vote(index, who, 100_000n * BLY);
}
const locks = await api.query.balances.locks(bob.address);
const votingLock = locks.find((l) => l.id.toUtf8() === 'pyconvot');
if (!votingLock || votingLock.amount.toBigInt() !== 100_000n * BLY) {
  fail(`Bob's vote is not locked: ${JSON.stringify(locks.toHuman())}`);
}
log(`Bob's 100000 BLY are locked for voting (lock 'pyconvot'), not spent`);

await untilApproved(good);
await untilApproved(bad);
await until('MinImprovement enacted', async () => {
  const value = (await api.query.jobs.params()).minImprovement.toBigInt();
  return value === (2n * PERBILL) / 100n;
});
log('enacted: jobs.params.minImprovement = 2 %');
await until('the out-of-range change to be refused at enactment', async () =>
  seen.some(({ event }) => isDispatchedWith(event, 'governance.AboveMaximum')),
);
const after = (await api.query.polRewards.params()).committeeSize.toNumber();
if (after !== before) fail(`committee size changed from ${before} to ${after}`);
log(`refused at enactment: governance.AboveMaximum; committee size still ${after}`);
await untilApproved(escalate);
await until('the escalation to be refused at enactment', async () =>
  seen.some(({ event }) => isDispatchedWith(event, 'governance.RootOnly')),
);
const budgetAfter = (await api.query.polRewards.params()).epochBudget.toBigInt();
if (budgetAfter !== budgetBefore) fail(`epoch budget changed from ${budgetBefore} to ${budgetAfter}`);
log(`refused at enactment: governance.RootOnly; epoch budget still ${budgetAfter}`);

// --- 3: a runtime upgrade through the root track.
if (wasmPath) {
  const code = readFileSync(wasmPath);
  const oldVersion = api.runtimeVersion.specVersion.toNumber();
  const upgrade = await propose(api.tx.system.setCode('0x' + code.toString('hex')), { system: 'Root' }, `setCode (${code.length} bytes)`);
  await vote(upgrade, alice, 500_000n * BLY);
  await vote(upgrade, bob, 500_000n * BLY);
  await untilApproved(upgrade);
  await until('the new runtime', async () => {
    const version = await api.rpc.state.getRuntimeVersion();
    return version.specVersion.toNumber() > oldVersion;
  });
  const version = (await api.rpc.state.getRuntimeVersion()).specVersion.toNumber();
  await until('the system.CodeUpdated event', async () => seen.some(({ event }) => event.section === 'system' && event.method === 'CodeUpdated'), 30);
  log(`runtime upgraded by referendum: specVersion ${oldVersion} -> ${version}`);
  // The chain goes on under the new runtime: a transfer signed for it is included.
  await until('the client to follow the upgrade', async () => api.runtimeVersion.specVersion.toNumber() === version);
  await send(api.tx.balances.transferKeepAlive(charlie.address, BLY), alice, 'transfer after the upgrade');
}

log('ok: governance works from @polkadot/api');
await api.disconnect();
process.exit(0);

// Notes the preimage of `call`, submits it on the track of `origin` and places the decision
// deposit; returns the referendum index.
async function propose(call, origin, label) {
  await send(api.tx.preimage.notePreimage(call.method.toHex()), alice, `preimage of ${label}`);
  const proposal = { Lookup: { hash: call.method.hash.toHex(), len: call.method.encodedLength } };
  const events = await send(api.tx.referenda.submit(origin, proposal, { After: 1 }), alice, `submit ${label}`);
  const submitted = events.find(({ event }) => api.events.referenda.Submitted.is(event));
  if (!submitted) fail(`no referenda.Submitted for ${label}`);
  const index = submitted.event.data.index.toNumber();
  await send(api.tx.referenda.placeDecisionDeposit(index), alice, `decision deposit #${index}`);
  log(`referendum #${index} (${label}) on track ${submitted.event.data.track.toNumber()}`);
  return index;
}

async function vote(index, who, balance) {
  const standard = { Standard: { vote: { aye: true, conviction: 'Locked1x' }, balance } };
  await send(api.tx.convictionVoting.vote(index, standard), who, `vote aye on #${index}`);
}

async function untilApproved(index) {
  await until(`referendum #${index} to pass`, async () => {
    const info = await api.query.referenda.referendumInfoFor(index);
    if (info.isSome && (info.unwrap().isRejected || info.unwrap().isTimedOut)) fail(`referendum #${index} failed: ${info.toString()}`);
    return info.isSome && info.unwrap().isApproved;
  });
  log(`referendum #${index} approved`);
}

function isDispatchedWith(event, name) {
  if (!api.events.scheduler.Dispatched.is(event)) return false;
  const result = event.data.result;
  if (!result.isErr || !result.asErr.isModule) return false;
  const meta = event.registry.findMetaError(result.asErr.asModule);
  return `${meta.section}.${meta.name}` === name;
}

async function until(what, check, seconds = 120) {
  const deadline = Date.now() + seconds * 1000;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 500));
  }
  fail(`timed out waiting for ${what}`);
}

function send(call, who, label) {
  return submitOrFail(api, call, who, label, { log, fail });
}
