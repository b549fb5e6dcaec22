// The chain's recent events, read block by block from the node (there is no indexer): what the
// pages show of history (verdicts, payments, slashes) comes from the last `blocks` blocks only,
// and each page says so.
import type { ApiPromise } from '@polkadot/api';

export interface ChainEvent {
  block: number;
  section: string;
  method: string;
  /** The event's fields by name, as @polkadot/api's JSON (numbers, hex, addresses). */
  data: Record<string, unknown>;
}

/** Blocks of history a page reads: `?history=N` in the URL, else 200 (a node keeps the state of
 * its last 256 blocks by default; an archive node, `--state-pruning archive`, keeps them all). */
export const HISTORY_BLOCKS = (() => {
  const n = Number(new URLSearchParams(location.search).get('history'));
  return Number.isInteger(n) && n > 0 ? Math.min(n, 100_000) : 200;
})();

/** Whether a read failed because the node no longer has that block's state. */
export function isPruned(e: unknown): boolean {
  return /State already discarded|pruned|Unknown block/i.test(e instanceof Error ? e.message : String(e));
}

/** Events of the last `blocks` blocks up to the best one, oldest first, going back only as far as
 * the node still holds state; `from` is the oldest block actually read. */
export async function recentEvents(api: ApiPromise, blocks = HISTORY_BLOCKS): Promise<{ events: ChainEvent[]; from: number; to: number }> {
  const head = await api.rpc.chain.getHeader();
  const to = head.number.toNumber();
  const oldest = Math.max(0, to - blocks + 1);
  const batches: ChainEvent[][] = [];
  let from = to + 1;
  // Newest first, so that a pruned block ends the walk with everything newer read.
  walk: for (let top = to; top >= oldest; top -= 25) {
    const numbers = Array.from({ length: Math.min(25, top - oldest + 1) }, (_, i) => top - i);
    const results = await Promise.all(numbers.map(async (n) => {
      try {
        const hash = await api.rpc.chain.getBlockHash(n);
        const at = await api.at(hash);
        const records = (await at.query.system.events()) as any;
        return records.map(({ event }: any): ChainEvent => {
          const names: (string | undefined)[] = event.meta.fields.map((f: any) => f.name.unwrapOr(undefined)?.toString());
          const data: Record<string, unknown> = {};
          event.data.forEach((value: any, j: number) => { data[names[j] ?? String(j)] = value.toJSON(); });
          return { block: n, section: event.section, method: event.method, data };
        }) as ChainEvent[];
      } catch (e) {
        // The newest block must be readable: a failure there is not pruning, whatever it says.
        if (isPruned(e) && n !== to) return undefined;
        throw e;
      }
    }));
    for (let i = 0; i < numbers.length; i++) {
      const got = results[i];
      if (!got) break walk;
      batches.push(got);
      from = numbers[i];
    }
  }
  const events = batches.reverse().flat();
  return { events, from: Math.min(from, to), to };
}
