// Governance: referenda with their track, state and tally, kept live block by block; voting with
// an injected wallet (a browser extension such as Polkadot.js or Talisman) or, on a dev chain,
// with a dev account.
import { u8aToString } from '@polkadot/util';
import type { Page } from '../context';
import { DEV_NAMES, devKeyring } from '../accounts';
import { badge, bly, BLY, errorBox, h, table } from '../ui';

const CONVICTIONS = ['None', 'Locked1x', 'Locked2x', 'Locked3x', 'Locked4x', 'Locked5x', 'Locked6x'];

interface Injected { name: string; address: string; signer: unknown }

declare global {
  interface Window { injectedWeb3?: Record<string, { enable: (origin: string) => Promise<{ accounts: { get: () => Promise<{ address: string; name?: string }[]> }; signer: unknown }> }> }
}

export const governancePage: Page = async ({ api, devChain }, el) => {
  el.append(h('h1', {}, 'Governance'));
  const tracks = new Map<number, string>();
  // A track's name is text, or fixed bytes padded with zeros in newer runtimes.
  for (const [id, info] of api.consts.referenda.tracks as any) tracks.set(id.toNumber(), u8aToString(info.name.toU8a(true)).replace(/\0+$/, ''));
  const list = h('div', {}, h('p', { class: 'loading' }, 'Loading referenda…'));
  // What each proposal does, decoded from its preimage (cached once decoded: a noted preimage
  // never changes; one not noted yet is looked up again).
  const calls = new Map<string, string>();
  const describe = async (proposal: any): Promise<string> => {
    const key = proposal.toHex();
    const known = calls.get(key);
    if (known) return known;
    let bytes: Uint8Array | undefined;
    if (proposal.isInline) bytes = proposal.asInline.toU8a(true);
    if (proposal.isLookup) {
      const { hash_, len } = proposal.asLookup;
      const stored: any = await api.query.preimage.preimageFor([hash_, len]);
      if (stored.isSome) bytes = stored.unwrap().toU8a(true);
    }
    if (!bytes) return `preimage not noted: ${JSON.stringify(proposal.toHuman())}`;
    let text: string;
    try {
      const call = api.createType('Call', bytes);
      text = `${call.section}.${call.method}(${JSON.stringify(call.toHuman().args)})`;
    } catch (e) {
      text = `undecodable call (${e instanceof Error ? e.message : e})`;
    }
    calls.set(key, text);
    return text;
  };
  const refresh = async () => {
    const entries = await api.query.referenda.referendumInfoFor.entries();
    const rows = entries
      .map(([key, value]) => ({ id: (key.args[0] as any).toNumber() as number, info: (value as any).unwrap() }))
      .sort((a, b) => b.id - a.id);
    const proposals = await Promise.all(rows.map(({ info }) => (info.isOngoing ? describe(info.asOngoing.proposal) : Promise.resolve('—'))));
    list.replaceChildren(table(['Referendum', 'Track', 'State', 'Ayes', 'Nays', 'Support', 'Proposal'], rows.map(({ id, info }, i) => {
      const ongoing = info.isOngoing ? info.asOngoing : undefined;
      const tally = ongoing?.tally;
      return [
        h('span', { 'data-referendum': id }, `#${id}`),
        ongoing ? tracks.get(ongoing.track.toNumber()) ?? `track ${ongoing.track.toNumber()}` : '—',
        badge(info.type, info.isApproved ? 'ok' : info.isOngoing ? 'warn' : 'bad'),
        tally ? h('span', { 'data-ayes': tally.ayes.toString() }, bly(tally.ayes.toBigInt())) : '—',
        tally ? h('span', { 'data-nays': tally.nays.toString() }, bly(tally.nays.toBigInt())) : '—',
        tally ? h('span', { 'data-support': tally.support.toString() }, bly(tally.support.toBigInt())) : '—',
        h('span', { class: 'mono', 'data-proposal': proposals[i] }, proposals[i]),
      ];
    }), 'No referenda yet.', 'referenda'));
    return rows;
  };
  let rows = await refresh();

  // The vote form: who signs, which referendum, how.
  const signers = h('select', { 'aria-label': 'Signer', 'data-testid': 'signer' });
  const injected: Injected[] = [];
  if (devChain) for (const name of DEV_NAMES) signers.append(h('option', { value: `dev:${name}` }, `${name} (dev account)`));
  const walletButton = h('button', { type: 'button' }, 'Connect wallet');
  walletButton.addEventListener('click', async () => {
    const wallets = window.injectedWeb3 ?? {};
    if (Object.keys(wallets).length === 0) {
      status.replaceChildren(errorBox('No wallet extension is installed in this browser.'));
      return;
    }
    // Connecting again lists the wallets' accounts afresh.
    injected.length = 0;
    for (const option of [...signers.options]) if (option.value.startsWith('wallet:')) option.remove();
    for (const [name, wallet] of Object.entries(wallets)) {
      try {
        const enabled = await wallet.enable('Blyan');
        for (const a of await enabled.accounts.get()) {
          injected.push({ name: a.name ?? name, address: a.address, signer: enabled.signer });
          signers.append(h('option', { value: `wallet:${injected.length - 1}` }, `${a.name ?? a.address} (${name})`));
        }
      } catch (e) {
        status.replaceChildren(errorBox(e));
      }
    }
  });
  const referendum = h('select', { 'aria-label': 'Referendum', 'data-testid': 'referendum' });
  const fillReferenda = () => referendum.replaceChildren(...rows.filter((r) => r.info.isOngoing).map((r) => h('option', { value: r.id }, `#${r.id}`)));
  fillReferenda();
  const direction = h('select', { 'aria-label': 'Vote', 'data-testid': 'direction' }, h('option', { value: 'aye' }, 'Aye'), h('option', { value: 'nay' }, 'Nay'));
  // Votes count 0.1× without conviction, 1×–6× locked for 1–32 lock periods.
  const conviction = h('select', { 'aria-label': 'Conviction' }, ...CONVICTIONS.map((c, i) => h('option', { value: c }, i ? `${c} (${i}× votes)` : 'No lock (0.1× votes)')));
  const amount = h('input', { type: 'number', min: 0, step: 'any', value: 1, 'aria-label': 'BLY', 'data-testid': 'amount', style: 'width:7rem' });
  const vote = h('button', { type: 'submit', 'data-testid': 'vote' }, 'Vote');
  const status = h('div', { 'data-testid': 'vote-status' });
  // The vote being watched (its status subscription), stopped once it is settled or the page left.
  let watching: (() => void) | undefined;
  const stopWatching = () => { watching?.(); watching = undefined; };
  const form = h('form', { class: 'inline card' }, signers, walletButton, referendum, direction, conviction, h('label', {}, amount, ' BLY'), vote);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    if (!referendum.value) { status.replaceChildren(errorBox('No ongoing referendum to vote on.')); return; }
    if (!signers.value) { status.replaceChildren(errorBox('Choose who signs: connect a wallet.')); return; }
    const [plancks, bad] = toPlancks(amount.value);
    if (bad) { status.replaceChildren(errorBox(bad)); return; }
    const tx = api.tx.convictionVoting.vote(Number(referendum.value), {
      Standard: { vote: { aye: direction.value === 'aye', conviction: conviction.value }, balance: plancks },
    });
    vote.disabled = true;
    status.replaceChildren(h('p', { class: 'muted' }, 'Signing…'));
    let settled = false;
    const done = (shown: HTMLElement) => {
      settled = true;
      status.replaceChildren(shown);
      vote.disabled = false;
      stopWatching();
    };
    try {
      const [kind, which] = signers.value.split(':');
      const onStatus = (result: any) => {
        const block = result.status.isInBlock ? result.status.asInBlock : result.status.isFinalized ? result.status.asFinalized : undefined;
        if (result.dispatchError) {
          const err = result.dispatchError.isModule ? api.registry.findMetaError(result.dispatchError.asModule) : undefined;
          done(errorBox(`Refused: ${err ? `${err.section}.${err.name}` : result.dispatchError.toString()}`));
        } else if (block) {
          done(h('p', { 'data-testid': 'voted', 'data-block': block.toHex() }, `Vote included in block ${block.toHex().slice(0, 10)}…`));
          void update();
        } else if (result.isError) {
          done(errorBox(`The pool dropped the vote (${result.status.type}).`));
        } else {
          status.replaceChildren(h('p', { class: 'muted' }, `Vote ${result.status.type}…`));
        }
      };
      if (kind === 'dev') {
        const pair = (await devKeyring(api.registry.chainSS58 ?? 42)).getPairs().find((p) => p.meta.name === which)!;
        watching = await tx.signAndSend(pair, onStatus);
      } else {
        const w = injected[Number(which)];
        watching = await tx.signAndSend(w.address, { signer: w.signer as any }, onStatus);
      }
      if (settled) stopWatching(); // settled before its subscription was handed back
    } catch (err) {
      done(errorBox(err));
    }
  });

  el.append(h('h2', {}, 'Referenda'), list, h('h2', {}, 'Vote'), form, status);
  if (!devChain) el.append(h('p', { class: 'muted' }, 'Sign with a wallet extension holding your account; BLY voted with conviction is locked, not spent.'));
  // Tallies move with every block: refreshed as blocks come, one refresh at a time (a block
  // arriving meanwhile asks for one more), errors shown in place of the list.
  let running = false;
  let again = false;
  const update = async () => {
    if (running) { again = true; return; }
    running = true;
    try {
      do {
        again = false;
        rows = await refresh();
        const chosen = referendum.value;
        fillReferenda();
        if ([...referendum.options].some((o) => o.value === chosen)) referendum.value = chosen;
      } while (again);
    } catch (e) {
      list.replaceChildren(errorBox(e));
    } finally {
      running = false;
    }
  };
  const unsubscribe = await api.rpc.chain.subscribeNewHeads(() => void update());
  return () => { unsubscribe(); stopWatching(); };
};

/** `text` BLY as plancks, exactly (no float rounding), or why not. */
function toPlancks(text: string): [bigint, string | undefined] {
  const m = /^(\d+)(?:\.(\d{1,12}))?$/.exec(text.trim());
  if (!m) return [0n, `"${text}" is not an amount of BLY.`];
  const plancks = BigInt(m[1]) * BLY + BigInt((m[2] ?? '').padEnd(12, '0') || '0');
  return plancks === 0n ? [0n, 'Vote with more than 0 BLY.'] : [plancks, undefined];
}

