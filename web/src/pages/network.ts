// Network: blocks as they come, finality lag, the validator set and their stake.
import type { ApiPromise } from '@polkadot/api';
import type { Header } from '@polkadot/types/interfaces';
import type { Page } from '../context';
import { account, bly, h, mono, stat, table } from '../ui';

const KEPT = 10;

/// The author of a block: its BABE pre-digest gives the author's index in the epoch's
/// authority set, which is the session's validators *in the block's own state* (the block that
/// starts an epoch rotates the session first). @polkadot/api's derive reads the parent's set,
/// which names someone else in the first block of a session whose set changed.
async function babeAuthor(api: ApiPromise, header: Header): Promise<string> {
  for (const log of header.digest.logs) {
    if (!log.isPreRuntime) continue;
    const [engine, data] = log.asPreRuntime;
    if (engine.toString() !== 'BABE') continue;
    const pre = api.registry.createType('RawBabePreDigest', data) as any;
    const claim = pre.isPrimary ? pre.asPrimary : pre.isSecondaryPlain ? pre.asSecondaryPlain : pre.asSecondaryVRF;
    const index = claim.authorityIndex.toNumber();
    const at = await api.at(header.hash);
    const set = (await at.query.session.validators()) as any as { toString(): string }[];
    return set[index]?.toString() ?? '';
  }
  return '';
}

export const networkPage: Page = async ({ api }, el) => {
  const chain = await api.rpc.system.chain();
  const validators = (await api.query.session.validators()) as any as { toString(): string }[];
  const stakes = await Promise.all(validators.map((v) => api.query.staking.ledger(v)));
  const best = h('span', {}, '…');
  const finalized = h('span', {}, '…');
  const lag = h('span', {}, '…');
  const blocks = h('div', {}, h('p', { class: 'loading' }, 'Waiting for a block…'));
  let bestNumber = 0;
  let finalizedNumber = 0;
  const recent: { number: number; hash: string; author: string }[] = [];
  const showLag = () => { lag.textContent = `${Math.max(0, bestNumber - finalizedNumber)} blocks`; };

  el.append(
    h('h1', {}, 'Network'),
    h('div', { class: 'stats' },
      stat('Chain', chain.toString(), 'chain'),
      stat('Runtime', `${api.runtimeVersion.specName.toString()} v${api.runtimeVersion.specVersion.toNumber()}`, 'runtime'),
      stat('Best block', best, 'best'),
      stat('Finalized', finalized, 'finalized'),
      stat('Finality lag', lag, 'lag'),
      stat('Validators', validators.length, 'validator-count')),
    h('h2', {}, 'Latest blocks'),
    blocks,
    h('h2', {}, 'Validators'),
    table(['Validator', 'Bonded'], validators.map((v, i) => {
      const ledger = stakes[i] as any;
      return [account(v.toString()), ledger.isSome ? bly(ledger.unwrap().total.toBigInt()) : h('span', { class: 'muted' }, 'not bonded')];
    }), 'No validators.', 'validators'),
  );

  const render = () => blocks.replaceChildren(table(['Block', 'Hash', 'Author'], recent.map((b) => [
    `#${b.number}`, mono(b.hash), b.author ? account(b.author) : h('span', { class: 'muted' }, 'unknown'),
  ]), 'No blocks yet.', 'blocks'));
  const heads = await api.rpc.chain.subscribeNewHeads((header) => {
    bestNumber = header.number.toNumber();
    best.textContent = `#${bestNumber}`;
    best.dataset.number = String(bestNumber);
    showLag();
    const row = { number: bestNumber, hash: header.hash.toHex(), author: '' };
    recent.unshift(row);
    recent.splice(KEPT);
    render();
    babeAuthor(api, header).then((author) => {
      row.author = author;
      if (recent.includes(row)) render();
    }).catch(() => { /* stays "unknown": the block's state may be pruned already */ });
  });
  const finals = await api.rpc.chain.subscribeFinalizedHeads((header) => {
    finalizedNumber = header.number.toNumber();
    finalized.textContent = `#${finalizedNumber}`;
    finalized.dataset.number = String(finalizedNumber);
    showLag();
  });
  return () => { heads(); finals(); };
};
