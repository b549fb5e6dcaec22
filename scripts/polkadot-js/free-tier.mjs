// The free tier driven from @polkadot/api alone, against a dev node:
//
//   node free-tier.mjs ws://127.0.0.1:9944
//
// 1. A brand-new account holding nothing mines a proof of work (bound to its account, a recent
//    block and a nonce) and sends an unsigned `freeTier.requestUnsigned`, signed inside the call:
//    the request is admitted, the account still holds nothing; the same transaction again is
//    refused by the pool (its proof of work is spent).
// 2. With the day's quota set to 5 (sudo, dev chain), Bob sends five signed `freeTier.request`s:
//    all included, his balance unchanged (feeless); the sixth is refused by the pool.
//
// Prints what happens and exits non-zero on the first thing that does not go as described.
import { ApiPromise, WsProvider } from '@polkadot/api';
import { Keyring } from '@polkadot/keyring';
import { submitOrFail } from './submit.mjs';
import { u8aConcat, u8aToHex, stringToU8a, bnToU8a } from '@polkadot/util';
import { blake2AsU8a, cryptoWaitReady, mnemonicGenerate } from '@polkadot/util-crypto';

const url = process.argv[2] ?? 'ws://127.0.0.1:9944';
function fail(message) {
  console.error(`FAIL ${message}`);
  process.exit(1);
}
const log = (m) => console.log(m);

await cryptoWaitReady();
const api = await ApiPromise.create({ provider: new WsProvider(url), noInitWarn: true });
const keyring = new Keyring({ type: 'sr25519' });
const alice = keyring.addFromUri('//Alice');
const bob = keyring.addFromUri('//Bob');
const request = { version: 0, promptHash: u8aToHex(blake2AsU8a('What is Proof-of-Learning?')), maxTokens: 64 };

const le = (value, bits) => bnToU8a(value, { bitLength: bits, isLe: true });
const leadingZeroBits = (hash) => {
  let bits = 0;
  for (const byte of hash) {
    if (byte === 0) { bits += 8; continue; }
    return bits + Math.clz32(byte) - 24;
  }
  return bits;
};

// --- 1. Nothing but a key: unsigned request with a proof of work.
const fresh = keyring.addFromUri(mnemonicGenerate());
const params = await api.query.freeTier.params();
const difficulty = params.powDifficulty.toNumber();
const best = (await api.rpc.chain.getHeader()).number.toNumber();
const block = best;
const blockHash = await api.rpc.chain.getBlockHash(block);
// blake2_256(SCALE("blyan/free-pow", account, block, block_hash, nonce)), as the pallet hashes it.
const prefix = u8aConcat(stringToU8a('blyan/free-pow'), fresh.publicKey, le(block, 32), blockHash.toU8a());
const started = Date.now();
let nonce = 0;
while (leadingZeroBits(blake2AsU8a(u8aConcat(prefix, le(nonce, 64)), 256)) < difficulty) nonce += 1;
log(`mined a ${difficulty}-bit proof of work for a fresh account in ${nonce + 1} hashes (${Date.now() - started} ms)`);
const seal = { block, nonce };
const genesis = api.genesisHash.toU8a();
const payload = u8aConcat(
  stringToU8a('blyan/free-request'),
  genesis,
  fresh.publicKey,
  api.createType('PalletFreeTierFreeRequest', request).toU8a(),
  api.createType('PalletFreeTierPowSeal', seal).toU8a(),
);
const signature = { Sr25519: u8aToHex(fresh.sign(payload)) };
const unsigned = api.tx.freeTier.requestUnsigned(fresh.address, request, seal, signature);
const events = await submit(unsigned, undefined, 'unsigned free request');
const admitted = events.find(({ event }) => api.events.freeTier.FreeRequested.is(event));
if (!admitted) fail('no freeTier.FreeRequested event');
log(`admitted: ${JSON.stringify(admitted.event.data.toHuman())}`);
const held = (await api.query.system.account(fresh.address)).data.free.toBigInt();
if (held !== 0n) fail(`the fresh account holds ${held}`);
log('the fresh account still holds 0 BLY');
try {
  await api.tx.freeTier.requestUnsigned(fresh.address, request, seal, signature).send();
  fail('a replayed proof of work was accepted');
} catch (e) {
  log(`replay refused by the pool: ${e.message}`);
}

// --- 2. Signed requests: feeless within quota, refused beyond it.
await submit(api.tx.sudo.sudo(api.tx.governance.setParameter({ MaxDailyQuota: 5 })), alice, 'sudo: quota 5 a day');
const before = (await api.query.system.account(bob.address)).data.free.toBigInt();
for (let i = 0; i < 5; i++) {
  await submit(api.tx.freeTier.request(request, null), bob, `Bob's free request ${i + 1}`);
}
const after = (await api.query.system.account(bob.address)).data.free.toBigInt();
if (after !== before) fail(`Bob paid ${before - after} for free requests`);
log('Bob paid nothing for his five requests');
try {
  await api.tx.freeTier.request(request, null).signAndSend(bob, { nonce: -1 });
  fail('a sixth request was accepted');
} catch (e) {
  if (!/Custom error: 1/.test(e.message)) fail(`unexpected refusal: ${e.message}`);
  log(`sixth request refused by the pool: ${e.message}`);
}
log('ok: the free tier works from @polkadot/api');
await api.disconnect();
process.exit(0);

function submit(tx, who, label) {
  return submitOrFail(api, tx, who, label, { log, fail });
}
