// Miner dashboard: an account's balance over recent blocks as a chart, its bonds (holds by
// reason), its roles (worker, verifier, server) and every recent event naming it (payments,
// rewards, slashes), with its return on bond over the same blocks.
import type { Page } from '../context';
import { DEV_NAMES, resolveAccount } from '../accounts';
import { HISTORY_BLOCKS, isPruned, recentEvents } from '../events';
import { bly, errorBox, h, s, stat, table } from '../ui';

const SAMPLES = 30;

export const minerPage: Page = async ({ api, devChain }, el, params) => {
  el.append(h('h1', {}, 'Miner dashboard'));
  const input = h('input', { name: 'account', placeholder: devChain ? 'SS58 address or dev name (Alice…)' : 'SS58 address', 'aria-label': 'Account', value: params.get('account') ?? '', style: 'flex:1;min-width:12rem' });
  const form = h('form', { class: 'inline' }, input, h('button', { type: 'submit' }, 'Show'));
  form.addEventListener('submit', (e) => { e.preventDefault(); location.hash = `#/miner?account=${encodeURIComponent(input.value.trim())}`; });
  el.append(form);
  if (devChain) el.append(h('p', { class: 'muted' }, 'Dev accounts: ', ...DEV_NAMES.flatMap((n, i) => [i ? ', ' : '', h('a', { href: `#/miner?account=${n}` }, n)])));
  const wanted = params.get('account');
  if (!wanted) {
    el.append(h('p', { class: 'empty' }, 'Name an account to see its earnings.'));
    return;
  }
  let who: string;
  try {
    who = await resolveAccount(wanted, devChain, api.registry.chainSS58 ?? 42);
  } catch (e) {
    el.append(errorBox(e));
    return;
  }

  // The events first: they say how far back the node still holds state.
  const history = await recentEvents(api, HISTORY_BLOCKS);
  const head = history.to;
  const step = Math.max(1, Math.ceil((head - history.from) / (SAMPLES - 1)));
  const points: number[] = [];
  for (let n = history.from; n < head; n += step) points.push(n);
  points.push(head);
  const [samples, holds, worker, verifier, server] = await Promise.all([
    Promise.all(points.map(async (n): Promise<bigint | undefined> => {
      try {
        const at = await api.at(await api.rpc.chain.getBlockHash(n));
        const a = (await at.query.system.account(who)) as any;
        return a.data.free.toBigInt() + a.data.reserved.toBigInt();
      } catch (e) {
        // The oldest blocks' state may be pruned between the walk and this read.
        if (isPruned(e) && n !== head) return undefined;
        throw e;
      }
    })),
    api.query.balances.holds(who),
    api.query.jobs.workers(who),
    api.query.polRewards.verifiers(who),
    api.query.inference.servers(who),
  ]);
  const kept = points.map((n, i) => [n, samples[i]] as const).filter((p): p is readonly [number, bigint] => p[1] !== undefined);
  points.splice(0, points.length, ...kept.map(([n]) => n));
  const balances = kept.map(([, b]) => b);
  const held: bigint = (holds as any).reduce((sum: bigint, x: any) => sum + x.amount.toBigInt(), 0n);
  const change = balances[balances.length - 1] - balances[0];
  const roi = held > 0n ? Number((change * 1_000_000n) / held) / 10_000 : null;
  const mine = history.events.filter((e) => JSON.stringify(e.data).includes(who));

  el.append(
    h('p', {}, 'Account ', h('span', { class: 'mono', 'data-testid': 'account' }, who)),
    h('div', { class: 'stats' },
      stat('Balance (free + held)', bly(balances[balances.length - 1]), 'balance'),
      stat('Bonded (held)', h('span', { 'data-plancks': held.toString() }, bly(held)), 'held'),
      stat(`Change over blocks #${points[0]}–#${head}`, bly(change), 'change'),
      stat('Return on bond', roi === null ? 'no bond' : `${roi.toFixed(2)} %`, 'roi')),
    h('h2', {}, 'Balance over time'),
    chart(points, balances),
    h('h2', {}, 'Bonds'),
    table(['Reason', 'Amount'], (holds as any).map((x: any) => [
      h('span', { 'data-reason': JSON.stringify(x.id.toJSON()) }, holdReason(x.id.toJSON())), bly(x.amount.toBigInt()),
    ]), 'Nothing held.', 'holds'),
    h('h2', {}, 'Roles'),
    table(['Role', 'State'], [
      ['Worker (miner)', (worker as any).isSome ? describe((worker as any).unwrap()) : 'not registered'],
      ['Verifier', (verifier as any).isSome ? describe((verifier as any).unwrap()) : 'not registered'],
      ['Inference server', (server as any).isSome ? describe((server as any).unwrap()) : 'not announced'],
    ], '', 'roles'),
    h('h2', {}, `Events naming this account, blocks #${history.from}–#${history.to}`),
    table(['Block', 'Event', 'Amount', 'Details'], mine.slice(-100).reverse().map((e) => [
      `#${e.block}`,
      h('span', { class: /slash|penalis|forfeit/i.test(e.method) ? 'badge bad' : '' }, `${e.section}.${e.method}`),
      amountOf(e.data),
      h('span', { class: 'mono' }, JSON.stringify(e.data)),
    ]), 'No events name this account in these blocks.', 'events'),
  );
};

function holdReason(id: unknown): string {
  // `{ pallet: { Reason: null } }` as @polkadot/api renders a runtime hold reason.
  if (id && typeof id === 'object') {
    const [pallet, inner] = Object.entries(id as Record<string, unknown>)[0] ?? [];
    const reason = inner && typeof inner === 'object' ? Object.keys(inner as object)[0] : inner;
    return `${pallet}: ${reason}`;
  }
  return String(id);
}

function describe(value: any): string {
  const human = value.toHuman();
  return typeof human === 'object' ? Object.entries(human).map(([k, v]) => `${k}: ${typeof v === 'object' ? JSON.stringify(v) : v}`).join('; ') : String(human);
}

function amountOf(data: Record<string, unknown>): string {
  for (const key of ['amount', 'reward', 'paid', 'slashed', 'bond', 'value']) {
    const v = data[key];
    if (typeof v === 'number' || (typeof v === 'string' && /^(0x[0-9a-f]+|\d+)$/i.test(v))) return bly(BigInt(v));
  }
  return '';
}

/** The balance at each sampled block as a line, with its range labelled. */
function chart(blocks: number[], values: bigint[]): SVGElement {
  const width = 600, height = 200, pad = 40;
  const min = values.reduce((a, b) => (b < a ? b : a));
  const max = values.reduce((a, b) => (b > a ? b : a));
  const span = max - min || 1n;
  const x = (i: number) => pad + ((width - 2 * pad) * (blocks[i] - blocks[0])) / Math.max(1, blocks[blocks.length - 1] - blocks[0]);
  const y = (v: bigint) => height - pad - Number(((v - min) * 1000n) / span) * (height - 2 * pad) / 1000;
  const line = values.map((v, i) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`).join(' ');
  return s('svg', { class: 'chart', viewBox: `0 0 ${width} ${height}`, 'data-testid': 'chart', 'data-points': values.length, role: 'img', 'aria-label': 'Balance over time' },
    s('polyline', { points: line, fill: 'none', stroke: '#3a5bd9', 'stroke-width': 2 }),
    ...values.map((v, i) => s('circle', { cx: x(i), cy: y(v), r: 2.5, fill: '#3a5bd9', 'data-block': blocks[i], 'data-plancks': v.toString() })),
    s('text', { x: 4, y: pad - 8, 'font-size': 11, fill: '#5b6675' }, bly(max)),
    s('text', { x: 4, y: height - pad + 16, 'font-size': 11, fill: '#5b6675' }, bly(min)),
    s('text', { x: pad, y: height - 6, 'font-size': 11, fill: '#5b6675' }, `#${blocks[0]}`),
    s('text', { x: width - pad, y: height - 6, 'font-size': 11, 'text-anchor': 'end', fill: '#5b6675' }, `#${blocks[blocks.length - 1]}`));
}
