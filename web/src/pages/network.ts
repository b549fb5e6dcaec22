// Network: blocks as they come, finality lag, the validator set and their stake.
import type { Page } from '../context';
import { account, bly, h, mono, stat, table } from '../ui';

const KEPT = 10;

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

  const heads = await api.derive.chain.subscribeNewHeads((header) => {
    bestNumber = header.number.toNumber();
    best.textContent = `#${bestNumber}`;
    best.dataset.number = String(bestNumber);
    showLag();
    recent.unshift({
      number: bestNumber,
      hash: header.hash.toHex(),
      author: header.author?.toString() ?? '',
    });
    recent.splice(KEPT);
    blocks.replaceChildren(table(['Block', 'Hash', 'Author'], recent.map((b) => [
      `#${b.number}`, mono(b.hash), b.author ? account(b.author) : h('span', { class: 'muted' }, 'unknown'),
    ]), 'No blocks yet.', 'blocks'));
  });
  const finals = await api.rpc.chain.subscribeFinalizedHeads((header) => {
    finalizedNumber = header.number.toNumber();
    finalized.textContent = `#${finalizedNumber}`;
    finalized.dataset.number = String(finalizedNumber);
    showLag();
  });
  return () => { heads(); finals(); };
};
