// The web app in real Chromium (Debian's `chromium`, driven by playwright-core) against a live
// network (started by worker/tests/web.rs): every page is compared with what the node's RPC
// says, a chat completes in the playground, a vote is cast and shows in the tally, the pages fit
// a phone's width, and an unreachable node is reported. Screenshots go to the output directory.
//
//   node test/browser.mjs http://127.0.0.1:8000 ws://127.0.0.1:9944 OUT_DIR
//
// Prints one line per check and exits non-zero on the first failure.
import { mkdirSync } from 'node:fs';
import { ApiPromise, WsProvider } from '@polkadot/api';
import { Keyring } from '@polkadot/keyring';
import { cryptoWaitReady } from '@polkadot/util-crypto';
import { chromium } from 'playwright-core';

const [app, nodeUrl, out = 'screenshots'] = process.argv.slice(2);
if (!app || !nodeUrl) {
  console.error('usage: node test/browser.mjs APP_URL NODE_WS_URL [OUT_DIR]');
  process.exit(2);
}
mkdirSync(out, { recursive: true });
const BLY = 10n ** 12n;
const PERBILL = 1_000_000_000n;

let browser;
let page;
async function fail(message) {
  console.error(`FAIL ${message}`);
  if (page) await page.screenshot({ path: `${out}/failure.png`, fullPage: true }).catch(() => {});
  if (browser) await browser.close().catch(() => {});
  process.exit(1);
}
// A failed check stops the run (through the catch around `run`, which screenshots the page).
class CheckFailed extends Error {}
function check(ok, message) {
  if (!ok) throw new CheckFailed(message);
  console.log(`ok ${message}`);
}
function same(a, b) {
  return JSON.stringify([...a].sort()) === JSON.stringify([...b].sort());
}

const api = await ApiPromise.create({ provider: new WsProvider(nodeUrl), noInitWarn: true });
await cryptoWaitReady();
const keyring = new Keyring({ type: 'sr25519', ss58Format: api.registry.chainSS58 ?? 42 });
const alice = keyring.addFromUri('//Alice');
const bob = keyring.addFromUri('//Bob');
const charlie = keyring.addFromUri('//Charlie');

browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
});
const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
const dave = keyring.addFromUri('//Dave');
// A wallet extension as the page sees one (`window.injectedWeb3`, the protocol Polkadot.js and
// Talisman implement): it offers Dave's account and signs payloads the page hands it, here with
// Dave's key held by this script, outside the page.
await context.exposeFunction('__walletSign', (payload) => {
  const extrinsic = api.registry.createType('ExtrinsicPayload', payload, { version: payload.version });
  return extrinsic.sign(dave).signature;
});
await context.addInitScript(({ address }) => {
  window.injectedWeb3 = {
    'test-wallet': {
      version: '1.0.0',
      enable: async () => ({
        accounts: { get: async () => [{ address, name: 'Dave (wallet)' }] },
        signer: { signPayload: async (payload) => ({ id: 1, signature: await window.__walletSign(payload) }) },
      }),
    },
  };
}, { address: dave.address });
page = await context.newPage();
// Uncaught errors of every page the test opens (the phone pages and the later ones included).
const consoleErrors = [];
const watchErrors = (p) => p.on('pageerror', (e) => consoleErrors.push(`${p.url()}: ${e.message}`));
watchErrors(page);
context.on('page', watchErrors);

// Opens `#/<path>` and waits until the page says its data is shown.
async function open(path, name) {
  await page.goto(`${app}/#/${path}`);
  // A hash change alone does not reload: force the app to render this page afresh.
  await page.reload();
  await page.waitForSelector(`main[data-ready="1"][data-page="${name}"]`, { timeout: 60_000 });
  const error = await page.$('main .error');
  if (error) await fail(`${path}: the page shows an error: ${await error.textContent()}`);
}
const texts = (selector, attribute) =>
  page.$$eval(selector, (els, a) => els.map((e) => (a ? e.getAttribute(a) : e.textContent)), attribute);
async function shot(name) {
  await page.screenshot({ path: `${out}/${name}.png`, fullPage: true });
}

try {
  await run();
} catch (e) {
  await fail(e instanceof CheckFailed ? e.message : `${e?.stack ?? e}`);
}
await browser.close();
await api.disconnect();
console.log('all browser checks passed');
process.exit(0);

async function run() {
  // --- what the gateway serves beside the API: the app at `/`, its files, 404 for anything else
  const status = async (path) => (await fetch(`${app}${path}`)).status;
  check((await status('/')) === 200 && (await status('/app.js')) === 200, 'gateway: the app and its bundle are served');
  check((await status('/v1/models/no-such-model')) === 404 && (await status('/models')) === 404 && (await status('/.hidden')) === 404,
    'gateway: unknown paths (the API\'s included) stay 404s');
  const served = await (await fetch(`${app}/web/config.json`)).json();
  check(served.node === nodeUrl, 'gateway: /web/config.json names the node');

  // --- network
  await open('network', 'network');
  await page.waitForSelector('[data-testid="best"] span[data-number]', { timeout: 30_000 });
  await page.waitForFunction(() => document.querySelector('[data-testid="blocks"]'), null, { timeout: 30_000 });
  const validators = (await api.query.session.validators()).map((v) => v.toString());
  check(same(await texts('[data-testid="validators"] [data-account]', 'data-account'), validators), `network: the validators are the session's (${validators.length})`);
  check((await page.textContent('[data-testid="chain"]')) === (await api.rpc.system.chain()).toString(), 'network: the chain name is the node\'s');
  const pageBest = Number(await page.getAttribute('[data-testid="best"] span', 'data-number'));
  const rpcBest = (await api.rpc.chain.getHeader()).number.toNumber();
  check(Math.abs(rpcBest - pageBest) <= 3, `network: best block #${pageBest} is the node's (#${rpcBest})`);
  await page.waitForSelector('[data-testid="finalized"] span[data-number]', { timeout: 30_000 });
  const pageFinal = Number(await page.getAttribute('[data-testid="finalized"] span', 'data-number'));
  const rpcFinal = (await api.rpc.chain.getHeader(await api.rpc.chain.getFinalizedHead())).number.toNumber();
  check(pageFinal <= pageBest && Math.abs(rpcFinal - pageFinal) <= 3, `network: finalized #${pageFinal} (node #${rpcFinal})`);
  // Each block's author, read from its BABE pre-digest by the page, is the one polkadot.js's
  // derive names (the same set here: a dev chain's validators do not change).
  await page.waitForSelector('[data-testid="blocks"] [data-account]', { timeout: 30_000 });
  const rows = await page.$$eval('[data-testid="blocks"] tbody tr', (trs) => trs.map((tr) => ({
    hash: tr.querySelector('.mono')?.getAttribute('title'),
    author: tr.querySelector('[data-account]')?.getAttribute('data-account') ?? null,
  })));
  const authored = rows.filter((r) => r.author);
  for (const r of authored) {
    const expected = (await api.derive.chain.getHeader(r.hash))?.author?.toString();
    check(r.author === expected, `network: block ${r.hash} by ${r.author}, derive says ${expected}`);
  }
  check(authored.length > 0, `network: ${authored.length} of ${rows.length} recent blocks show their BABE author`);
  await shot('network');

  // --- models: Alice, the model's owner, proposes three versions over the root (a line and a
  // merge), so that the graph has edges to draw; they stay candidates (nothing verifies them).
  {
    const [[key, value]] = await api.query.registry.models.entries();
    const model = key.args[0].toNumber();
    const rootId = value.unwrap().rootVersion.toNumber();
    const rootSemver = (await api.query.registry.versions(rootId)).unwrap().semver;
    const major = rootSemver.major.toNumber();
    const layer = (n) => [{ layer: 0, cid: `bafkreiwebtestlayer${n}`, merkleRoot: `0x${String(n).padStart(64, '0')}` }];
    const propose = async (parents, semver, n) => {
      const events = await send(api.tx.registry.proposeVersion({
        model, parents, semver, layers: layer(n), weightRoot: `0x${String(n).padStart(64, 'f')}`, adapter: null,
      }), alice, `propose ${semver.major}.${semver.minor}.${semver.patch}`);
      return events.find(({ event }) => event.section === 'registry' && event.method === 'VersionProposed').event.data.version.toNumber();
    };
    const a = await propose([rootId], { major: major + 1, minor: 0, patch: 0 }, 1);
    const b = await propose([a], { major: major + 1, minor: 1, patch: 0 }, 2);
    await propose([a, b], { major: major + 2, minor: 0, patch: 0 }, 3);
  }
  await open('models', 'models');
  const models = (await api.query.registry.models.entries()).map(([k]) => k.args[0].toString());
  check(same(await texts('[data-testid="models"] [data-model]', 'data-model'), models), `models: the registered models (${models.length})`);
  const versions = (await api.query.registry.versions.entries())
    .map(([k, v]) => ({ id: k.args[0].toNumber(), v: v.unwrap() }))
    .filter((x) => x.v.model.toString() === models.sort()[0]);
  const shownVersions = await texts('[data-testid="dag"] [data-version]', 'data-version');
  check(same(shownVersions, versions.map((x) => String(x.id))), `models: the DAG has one node per version (${versions.length})`);
  const statuses = await texts('[data-testid="dag"] [data-version]', 'data-status');
  check(same(statuses, versions.map((x) => x.v.status.type)), 'models: each node has its version\'s status');
  const edges = versions.reduce((n, x) => n + x.v.parents.length, 0);
  check((await texts('[data-testid="dag"] [data-edge]', 'data-edge')).length === edges, `models: one edge per parent link (${edges})`);
  const root = versions.find((x) => x.v.parents.length === 0);
  await page.click(`[data-testid="dag"] [data-version="${root.id}"]`);
  await page.waitForSelector(`[data-testid="version-detail"][data-version="${root.id}"]`, { timeout: 30_000 });
  check((await page.textContent('[data-testid="weight-root"]')) === root.v.weightRoot.toHex(), `models: v${root.id}'s weight root`);
  const layers = await api.query.registry.versionLayers(root.id);
  const shownLayers = await page.$$eval('[data-testid="layers"] tbody tr', (rows) => rows.map((r) => [...r.querySelectorAll('td')].map((td) => td.textContent)));
  check(shownLayers.length === layers.length && layers.every((l, i) => shownLayers[i][0] === l.layer.toString() && shownLayers[i][1] === l.cid.toUtf8() && shownLayers[i][2] === l.merkleRoot.toHex()),
    `models: v${root.id}'s ${layers.length} layers with their CIDs and Merkle roots`);
  await shot('models');

  // --- jobs
  await open('jobs', 'jobs');
  const jobs = (await api.query.jobs.jobs.entries()).map(([k, v]) => ({ id: k.args[0].toString(), status: v.unwrap().status.type }));
  check(same(await texts('[data-testid="jobs"] [data-job]', 'data-job'), jobs.map((j) => j.id)), `jobs: the live jobs (${jobs.length})`);
  if (jobs.length) {
    check(same(await texts('[data-testid="jobs"] [data-status]', 'data-status'), jobs.map((j) => j.status)), 'jobs: each job\'s state');
    await page.click(`[data-testid="jobs"] [data-job="${jobs[0].id}"]`);
    await page.waitForSelector(`[data-testid="job-detail"][data-job="${jobs[0].id}"]`, { timeout: 30_000 });
    const spec = JSON.parse(await page.textContent('[data-testid="spec"]'));
    const rpcSpec = (await api.query.jobs.jobs(jobs[0].id)).unwrap().spec.toHuman();
    check(JSON.stringify(spec) === JSON.stringify(rpcSpec), `jobs: job #${jobs[0].id}'s specification`);
  }
  await shot('jobs');

  // --- playground: a chat through the gateway, with its route and receipts
  await open('playground', 'playground');
  await page.fill('[data-testid="prompt"]', 'Say something about bits.');
  await page.click('[data-testid="send"]');
  await page.waitForSelector('[data-testid="chat-state"]:is([data-state="done"], [data-state="error"])', { timeout: 120_000 });
  const chatState = await page.getAttribute('[data-testid="chat-state"]', 'data-state');
  if (chatState !== 'done') await fail(`playground: the chat failed: ${await page.textContent('[data-testid="served"]')}`);
  const usage = (await page.textContent('[data-testid="chat-state"]')).match(/(\d+) prompt \+ (\d+) completion tokens/);
  check(usage && Number(usage[2]) > 0, `playground: a streamed answer with usage (${usage?.[0]})`);
  const announced = (await api.query.inference.servers.entries()).map(([k, v]) => ({ who: k.args[0].toString(), a: v.unwrap() }));
  const routed = await texts('[data-testid="route"] [data-account]', 'data-account');
  check(routed.length > 0 && routed.every((r) => announced.some((s) => s.who === r)), `playground: routed over announced servers (${routed.length} stage(s))`);
  const paid = await texts('[data-testid="receipts"] [data-account]', 'data-account');
  check(same(paid, routed), 'playground: one receipt per stage of the route, each to its server');
  // The page checked every stage's signature and the receipts' root of the route's commitments
  // itself (its own encoding of them, against what the gateway and the stages computed).
  const signatures = await texts('[data-testid="route"] [data-signed]', 'data-signed');
  check(signatures.length === routed.length && signatures.every((v) => v === 'true'), `playground: every stage's signature checked in the browser (${signatures})`);
  const verified = await page.getAttribute('[data-testid="verified"]', 'data-verified');
  check(verified === 'true', `playground: the receipts pay for exactly the route's signed answers: ${await page.textContent('[data-testid="verified"]')}`);
  await shot('playground');

  // --- servers (after the chat, the gateway has measured the stage it used)
  await open('servers', 'servers');
  check(same(await texts('[data-testid="servers"] [data-server]', 'data-server'), announced.map((s) => s.who)), `servers: the announcements (${announced.length})`);
  check(same(await texts('[data-testid="servers"] [data-price]', 'data-price'), announced.map((s) => s.a.pricePerToken.toString())), 'servers: their prices');
  const measured = await page.$$eval('[data-testid="servers"] tbody tr', (rows) => rows.filter((r) => r.querySelector('[data-latency]')).map((r) => r.querySelector('[data-server]').getAttribute('data-server')));
  check(routed.every((r) => measured.includes(r)), 'servers: the gateway\'s latency of every stage it routed to');
  await shot('servers');

  // --- miner dashboard of the server
  await open(`miner?account=${charlie.address}`, 'miner');
  const holds = await api.query.balances.holds(charlie.address);
  const held = holds.reduce((sum, h) => sum + h.amount.toBigInt(), 0n);
  check((await page.getAttribute('[data-testid="held"] span', 'data-plancks')) === held.toString(), `miner: Charlie's bonds (${held / BLY} BLY held)`);
  check(Number(await page.getAttribute('[data-testid="chart"]', 'data-points')) >= 2, 'miner: the balance chart');
  const lastPoint = await page.$$eval('[data-testid="chart"] circle', (cs) => cs.at(-1).getAttribute('data-block') + ':' + cs.at(-1).getAttribute('data-plancks'));
  const [block, plancks] = lastPoint.split(':');
  const at = await api.at(await api.rpc.chain.getBlockHash(Number(block)));
  const acct = await at.query.system.account(charlie.address);
  check(BigInt(plancks) === acct.data.free.toBigInt() + acct.data.reserved.toBigInt(), `miner: the chart's balance at #${block} is the chain's`);
  await shot('miner');
  await page.fill('input[name="account"]', 'not-an-account');
  await page.click('form.inline button[type="submit"]');
  await page.waitForSelector('main .error', { timeout: 30_000 });
  check(/not an SS58 address/.test(await page.textContent('main .error')), 'miner: a bad account is refused with a message');
  await shot('miner-refused');

  // --- governance: a referendum submitted now, a vote cast from the page
  await open('governance', 'governance');
  const call = api.tx.governance.setParameter({ MinImprovement: (3n * PERBILL) / 100n });
  await send(api.tx.preimage.notePreimage(call.method.toHex()), alice, 'preimage');
  const proposal = { Lookup: { hash: call.method.hash.toHex(), len: call.method.encodedLength } };
  const submittedEvents = await send(api.tx.referenda.submit({ Governance: 'ParameterAdmin' }, proposal, { After: 1 }), alice, 'submit');
  const submitted = submittedEvents.find(({ event }) => api.events.referenda.Submitted.is(event));
  const index = submitted.event.data.index.toNumber();
  const track = submitted.event.data.track.toNumber();
  // No decision deposit: the referendum stays ongoing, undecided (for 14 days), and its tally
  // can be compared at leisure; on the dev chain's 20-block decision period it would end mid-test.
  await page.waitForSelector(`[data-testid="referendum"] option[value="${index}"]`, { state: 'attached', timeout: 30_000 });
  check(true, `governance: referendum #${index} shows up live`);
  await page.waitForSelector(`tr:has([data-referendum="${index}"]) [data-proposal^="governance.setParameter"]`, { timeout: 30_000 });
  check(/MinImprovement/.test(await page.getAttribute(`tr:has([data-referendum="${index}"]) [data-proposal]`, 'data-proposal')), `governance: #${index}'s proposal is decoded from its preimage`);
  await page.selectOption('[data-testid="signer"]', 'dev:Bob');
  await page.selectOption('[data-testid="referendum"]', String(index));
  await page.fill('[data-testid="amount"]', '5');
  await page.click('[data-testid="vote"]');
  await page.waitForSelector('[data-testid="voted"], [data-testid="vote-status"] .error', { timeout: 60_000 });
  if (!(await page.$('[data-testid="voted"]'))) await fail(`governance: the vote failed: ${await page.textContent('[data-testid="vote-status"]')}`);
  const voting = await api.query.convictionVoting.votingFor(bob.address, track);
  const votes = voting.isCasting ? voting.asCasting.votes.map(([i, v]) => [i.toNumber(), v]) : [];
  const bobVote = votes.find(([i]) => i === index)?.[1];
  check(bobVote && bobVote.isStandard && bobVote.asStandard.vote.isAye && bobVote.asStandard.balance.toBigInt() === 5n * BLY, `governance: Bob's vote (aye, 5 BLY) is on chain for #${index}`);
  // Dave votes nay through the wallet extension.
  await page.click('text=Connect wallet');
  await page.waitForSelector('[data-testid="signer"] option[value="wallet:0"]', { state: 'attached', timeout: 30_000 });
  await page.selectOption('[data-testid="signer"]', 'wallet:0');
  await page.selectOption('[data-testid="direction"]', 'nay');
  await page.fill('[data-testid="amount"]', '2');
  await page.$eval('[data-testid="vote-status"]', (e) => e.replaceChildren());
  await page.click('[data-testid="vote"]');
  await page.waitForSelector('[data-testid="voted"], [data-testid="vote-status"] .error', { timeout: 60_000 });
  if (!(await page.$('[data-testid="voted"]'))) await fail(`governance: the wallet's vote failed: ${await page.textContent('[data-testid="vote-status"]')}`);
  const daveVoting = await api.query.convictionVoting.votingFor(dave.address, track);
  const daveVote = (daveVoting.isCasting ? daveVoting.asCasting.votes.map(([i, v]) => [i.toNumber(), v]) : []).find(([i]) => i === index)?.[1];
  check(daveVote && daveVote.isStandard && !daveVote.asStandard.vote.isAye && daveVote.asStandard.balance.toBigInt() === 2n * BLY, `governance: Dave's vote (nay, 2 BLY), signed by the wallet extension, is on chain for #${index}`);
  // The tally on the page is the chain's: the page refreshes it every block.
  const row = `tr:has([data-referendum="${index}"])`;
  let shown;
  let onChain;
  for (let i = 0; i < 20; i++) {
    const info = (await api.query.referenda.referendumInfoFor(index)).unwrap();
    if (!info.isOngoing) await fail(`governance: #${index} ended (${info.type}) before its tally was compared`);
    onChain = { ayes: info.asOngoing.tally.ayes.toString(), nays: info.asOngoing.tally.nays.toString() };
    shown = {
      ayes: await page.getAttribute(`${row} [data-ayes]`, 'data-ayes').catch(() => null),
      nays: await page.getAttribute(`${row} [data-nays]`, 'data-nays').catch(() => null),
    };
    if (shown.ayes === onChain.ayes && shown.nays === onChain.nays) break;
    await new Promise((r) => setTimeout(r, 1000));
  }
  const tallied = shown.ayes === onChain.ayes && shown.nays === onChain.nays && BigInt(onChain.ayes) > 0n && BigInt(onChain.nays) > 0n;
  check(tallied, `governance: the page's tally of #${index} is the chain's, both votes in it (page ${JSON.stringify(shown)}, chain ${JSON.stringify(onChain)})`);
  await shot('governance');

  // --- a phone's width: nothing wider than the screen
  const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true });
  phone.on('page', watchErrors);
  page = await phone.newPage();
  for (const [path, name] of [['network', 'network'], ['models', 'models'], ['servers', 'servers'], ['governance', 'governance']]) {
    await open(path, name);
    const width = await page.evaluate(() => document.documentElement.scrollWidth);
    check(width <= 390, `phone: ${name} fits 390 px (${width})`);
    await shot(`phone-${name}`);
  }

  // --- an unreachable node is said so, not waited on silently
  page = await context.newPage();
  await page.goto(`${app}/?node=ws://127.0.0.1:9#/network`);
  await page.waitForFunction(() => /unreachable/.test(document.getElementById('connection')?.textContent ?? ''), null, { timeout: 30_000 });
  check(true, 'an unreachable node is reported');
  await shot('unreachable');

  check(consoleErrors.length === 0, `no uncaught errors in the pages${consoleErrors.length ? `: ${consoleErrors.join('; ')}` : ''}`);
}

function send(tx, who, label) {
  return new Promise((resolve) => {
    const timer = setTimeout(() => fail(`${label}: not in a block after 60 s`), 60_000);
    tx.signAndSend(who, { nonce: -1 }, ({ status, events, dispatchError }) => {
      if (status.isInvalid || status.isDropped || status.isUsurped) return fail(`${label}: ${status.type}`);
      if (!status.isInBlock) return;
      clearTimeout(timer);
      if (dispatchError) {
        const meta = dispatchError.isModule ? api.registry.findMetaError(dispatchError.asModule) : undefined;
        return fail(`${label}: ${meta ? `${meta.section}.${meta.name}` : dispatchError.toString()}`);
      }
      resolve(events);
    }).catch((e) => fail(`${label}: ${e.message ?? e}`));
  });
}
