// Drives Blyan's protocol pallets with @polkadot/api using nothing but the chain's metadata:
// every storage item is read, every call is built from its metadata argument types, signed,
// submitted and included, and every failure decodes to a named error of the pallet.
//
//   node check-metadata.mjs ws://127.0.0.1:9944
//
// Prints one line per call and exits non-zero on the first thing @polkadot/api cannot do.
import { ApiPromise, WsProvider } from '@polkadot/api';
import { Keyring } from '@polkadot/keyring';

const PALLETS = ['registry', 'jobs', 'polRewards', 'trainingAudit'];
// Calls whose origin is root (a root referendum on a live chain): sent through the dev chain's
// sudo, their outcome read from `sudo.Sudid`.
const ROOT_CALLS = new Set(['polRewards.admitModel', 'polRewards.retireModel']);
const url = process.argv[2] ?? 'ws://127.0.0.1:9944';

function fail(message) {
  console.error(`FAIL ${message}`);
  process.exit(1);
}

const api = await ApiPromise.create({ provider: new WsProvider(url), noInitWarn: true });
const alice = new Keyring({ type: 'sr25519' }).addFromUri('//Alice');

// 1. Every storage item of the pallets, read (maps as their full entry lists).
for (const pallet of PALLETS) {
  const items = api.query[pallet];
  if (!items) fail(`no storage of pallet ${pallet} in the metadata`);
  for (const [name, query] of Object.entries(items)) {
    const isMap = query.creator.meta.type.isMap;
    const value = isMap ? await query.entries() : await query();
    console.log(`storage ${pallet}.${name}: ${isMap ? `${value.length} entries` : value.toString().slice(0, 60)}`);
  }
}

// 2. A real registration, read back through the metadata's types.
await submit(api.tx.registry.registerDataset('bafydataset', '0x' + '11'.repeat(32), 1024, 'CC0-1.0'), 'registry.registerDataset (real)');
const datasets = await api.query.registry.datasets.entries();
if (datasets.length !== 1) fail(`expected one dataset, found ${datasets.length}`);
const dataset = datasets[0][1].unwrap();
if (dataset.owner.toString() !== alice.address) fail(`dataset owner ${dataset.owner} is not Alice`);
if (dataset.cid.toUtf8() !== 'bafydataset') fail(`dataset cid read back as ${dataset.cid.toUtf8()}`);

// 3. Every call, with zero/empty arguments built from its metadata types. Each must be included; a
//    failure must be a named pallet error. (Parameters are governance's: see governance.mjs.)
let count = 0;
for (const pallet of PALLETS) {
  for (const [name, tx] of Object.entries(api.tx[pallet])) {
    const args = tx.meta.args.map((arg) => api.createType(arg.type.toString()));
    const label = `${pallet}.${name}`;
    if (ROOT_CALLS.has(label)) await submit(api.tx.sudo.sudo(tx(...args)), label, true);
    else await submit(tx(...args), label);
    count += 1;
  }
}
console.log(`ok: ${count} calls submitted and included`);
await api.disconnect();
process.exit(0);

// Signs `call` as Alice, waits for inclusion, prints the outcome (Ok or the error's name); for a
// `sudo` call, the outcome of the call it wraps.
function submit(call, label, sudo = false) {
  return new Promise((resolve) => {
    call
      .signAndSend(alice, { nonce: -1 }, ({ status, events, dispatchError }) => {
        if (!status.isInBlock) return;
        let outcome = 'Ok';
        let error = dispatchError;
        if (sudo && !error) {
          const sudid = events.find(({ event }) => api.events.sudo.Sudid.is(event));
          if (!sudid) fail(`${label}: no sudo.Sudid event`);
          const result = sudid.event.data[0];
          if (result.isErr) error = result.asErr;
        }
        if (error) {
          if (!error.isModule) fail(`${label}: non-module error ${error.toString()}`);
          const meta = api.registry.findMetaError(error.asModule);
          if (!meta.name) fail(`${label}: error without a name`);
          outcome = `${meta.section}.${meta.name}`;
        }
        console.log(`call ${label}: included, ${outcome}`);
        resolve(outcome);
      })
      .catch((e) => fail(`${label}: ${e.message ?? e}`));
  });
}
