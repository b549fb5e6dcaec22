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

export const HISTORY_BLOCKS = 600;

/** Events of the last `blocks` blocks up to the best one, oldest first. */
export async function recentEvents(api: ApiPromise, blocks = HISTORY_BLOCKS): Promise<{ events: ChainEvent[]; from: number; to: number }> {
  const head = await api.rpc.chain.getHeader();
  const to = head.number.toNumber();
  const from = Math.max(0, to - blocks + 1);
  const events: ChainEvent[] = [];
  const numbers = Array.from({ length: to - from + 1 }, (_, i) => from + i);
  for (let i = 0; i < numbers.length; i += 25) {
    const batch = await Promise.all(numbers.slice(i, i + 25).map(async (n) => {
      const hash = await api.rpc.chain.getBlockHash(n);
      const at = await api.at(hash);
      const records = (await at.query.system.events()) as any;
      return records.map(({ event }: any): ChainEvent => {
        const names: (string | undefined)[] = event.meta.fields.map((f: any) => f.name.unwrapOr(undefined)?.toString());
        const data: Record<string, unknown> = {};
        event.data.forEach((value: any, j: number) => { data[names[j] ?? String(j)] = value.toJSON(); });
        return { block: n, section: event.section, method: event.method, data };
      });
    }));
    for (const list of batch) events.push(...list);
  }
  return { events, from, to };
}
