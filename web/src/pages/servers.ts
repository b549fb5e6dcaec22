// Servers: announcements (version, layers, endpoint, price, capacity, bond), what this gateway
// measured of each endpoint (latency, load), and open inference challenges.
import type { Page } from '../context';
import { account, badge, bly, h, mono, table } from '../ui';

interface EndpointView { endpoint: string; latency_ms: number | null; sessions: number | null; capacity: number | null; avoided: boolean }

export const serversPage: Page = async ({ api, config }, el) => {
  const [entries, challenges, head] = await Promise.all([
    api.query.inference.servers.entries(),
    api.query.inference.challenges.entries(),
    api.rpc.chain.getHeader(),
  ]);
  let measured: EndpointView[] = [];
  let banned: string[] = [];
  if (config.gateway) {
    const r = await fetch('/web/stages.json');
    if (!r.ok) throw new Error(`the gateway's /web/stages.json answered ${r.status}`);
    const body = await r.json();
    measured = body.endpoints;
    banned = body.banned;
  }
  const now = head.number.toNumber();
  const servers = entries
    .map(([key, value]) => ({ who: key.args[0].toString(), a: (value as any).unwrap() }))
    .sort((x, y) => x.a.endpoint.toUtf8().localeCompare(y.a.endpoint.toUtf8()));
  el.append(h('h1', {}, 'Servers'));
  el.append(h('p', { class: 'muted' }, config.gateway
    ? 'Latency and load: what this gateway measured of each endpoint (a stage it has not routed to yet is not measured).'
    : 'Served without a gateway: no latency measurements.'));
  el.append(table(['Server', 'Version', 'Layers', 'Endpoint', 'Price / token', 'Capacity', 'Bond', 'Expires', 'Latency', 'Load'], servers.map(({ who, a }) => {
    const endpoint = a.endpoint.toUtf8();
    const m = measured.find((x) => x.endpoint === endpoint);
    const expires = a.expiresAt.toNumber();
    return [
      h('span', { 'data-server': who }, account(who), banned.includes(who) ? badge('caught lying', 'bad') : null),
      `v${a.version.toNumber()}`,
      `${a.layers.start.toNumber()}–${a.layers.end.toNumber()}`,
      mono(endpoint),
      h('span', { 'data-price': a.pricePerToken.toString() }, bly(a.pricePerToken.toBigInt())),
      a.capacity.toNumber(),
      bly(a.bond.toBigInt()),
      expires > now ? `#${expires}` : badge(`expired #${expires}`, 'bad'),
      m?.latency_ms != null ? h('span', { 'data-latency': m.latency_ms }, `${m.latency_ms.toFixed(1)} ms`) : h('span', { class: 'muted' }, 'not measured'),
      m?.sessions != null ? `${m.sessions}/${m.capacity}${m.avoided ? ' (avoided)' : ''}` : h('span', { class: 'muted' }, '—'),
    ];
  }), 'No server is announced.', 'servers'));

  el.append(h('h2', {}, 'Inference challenges'));
  el.append(table(['Challenge', 'Server', 'Challenger', 'Bond', 'Deadline', 'Arbiters (wrong / right / silent)'], challenges.map(([key, value]) => {
    const c = (value as any).unwrap();
    const seats = c.arbiters.isSome ? c.arbiters.unwrap() : [];
    const count = (want: boolean | null) => seats.filter(([, r]: any) => (r.isSome ? r.unwrap().isTrue : null) === want).length;
    return [
      `#${key.args[0].toString()}`, account(c.commitment.server.toString()), account(c.challenger.toString()), bly(c.bond.toBigInt()),
      `#${c.deadline.toNumber()}`, c.arbiters.isSome ? `${count(true)} / ${count(false)} / ${count(null)}` : 'not drawn yet',
    ];
  }), 'No open challenge.', 'challenges'));
};
