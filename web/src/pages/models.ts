// Models: every registered model, a model's version DAG drawn as a graph, and a version's layers
// (CIDs and Merkle roots), adapters and Proof-of-Learning verdict.
import type { Page } from '../context';
import { recentEvents } from '../events';
import { account, badge, h, mono, s, table } from '../ui';

interface Version {
  id: number;
  parents: number[];
  semver: string;
  weightRoot: string;
  status: string;
  proposer: string;
  createdAt: number;
}

export const modelsPage: Page = async ({ api }, el, params) => {
  const [models, versionEntries] = await Promise.all([api.query.registry.models.entries(), api.query.registry.versions.entries()]);
  const list = models
    .map(([key, value]) => ({ id: (key.args[0] as any).toNumber() as number, info: (value as any).unwrap() }))
    .sort((a, b) => a.id - b.id);
  el.append(h('h1', {}, 'Models'));
  if (list.length === 0) {
    el.append(h('p', { class: 'empty', 'data-testid': 'models' }, 'No model is registered yet.'));
    return;
  }
  const rewarded = await Promise.all(list.map((m) => api.query.polRewards.rewardedModels(m.id)));
  el.append(table(['Model', 'Name', 'Owner', 'Architecture', 'Licence', 'Versions', 'Rewarded head'], list.map((m, i) => {
    const a = m.info.architecture;
    const head = rewarded[i] as any;
    return [
      h('a', { href: `#/models?model=${m.id}`, 'data-model': m.id }, `#${m.id}`),
      m.info.name.toUtf8(),
      account(m.info.owner.toString()),
      h('span', {}, `${a.family.toUtf8()}, ${a.layerCount.toNumber()} layers; config `, mono(a.configCid.toUtf8())),
      m.info.licence.toUtf8(),
      m.info.versionCount.toNumber(),
      head.isSome ? `v${head.unwrap().toNumber()}` : h('span', { class: 'muted' }, 'not admitted'),
    ];
  }), '', 'models'));

  const modelId = Number(params.get('model') ?? list[0].id);
  const versions: Version[] = versionEntries
    .map(([key, value]) => {
      const v = (value as any).unwrap();
      return {
        id: (key.args[0] as any).toNumber() as number,
        model: v.model.toNumber() as number,
        parents: v.parents.map((p: any) => p.toNumber()) as number[],
        semver: `${v.semver.major}.${v.semver.minor}.${v.semver.patch}`,
        weightRoot: v.weightRoot.toHex() as string,
        status: v.status.type as string,
        proposer: v.proposer.toString() as string,
        createdAt: v.createdAt.toNumber() as number,
      };
    })
    .filter((v) => v.model === modelId)
    .sort((a, b) => a.id - b.id);
  const model = list.find((m) => m.id === modelId);
  el.append(h('h2', {}, `Version graph of model #${modelId}${model ? ` (${model.info.name.toUtf8()})` : ''}`));
  if (versions.length === 0) {
    el.append(h('p', { class: 'empty' }, 'This model has no versions.'));
    return;
  }
  const selected = Number(params.get('version') ?? versions[versions.length - 1].id);
  el.append(dag(modelId, versions, selected));
  const version = versions.find((v) => v.id === selected);
  if (version) el.append(await versionDetail(api, version));
};

/** The versions as a left-to-right graph: a version one column right of its deepest parent. */
function dag(model: number, versions: Version[], selected: number): SVGElement {
  const depth = new Map<number, number>();
  for (const v of versions) {
    const known = v.parents.filter((p) => depth.has(p)).map((p) => depth.get(p) as number);
    depth.set(v.id, known.length ? Math.max(...known) + 1 : 0);
  }
  const rows = new Map<number, number>();
  const at = new Map<number, { x: number; y: number }>();
  for (const v of versions) {
    const d = depth.get(v.id) as number;
    const row = rows.get(d) ?? 0;
    rows.set(d, row + 1);
    at.set(v.id, { x: 50 + d * 130, y: 40 + row * 70 });
  }
  const width = 100 + Math.max(...depth.values()) * 130;
  const height = 50 + Math.max(...rows.values()) * 70;
  for (const p of at.values()) p.y += 20; // room for arcs above the first row
  const colour: Record<string, string> = { Accepted: '#1b8a4b', Rejected: '#c23b3b', Candidate: '#b7791f' };
  // Parent → child, ending at the child's circle; an edge skipping columns arcs above the
  // nodes between (a merge's second parent would otherwise hide behind the first's line).
  const edges = versions.flatMap((v) => v.parents.filter((p) => at.has(p)).map((p) => {
    const a = at.get(p) as { x: number; y: number };
    const b = at.get(v.id) as { x: number; y: number };
    const skipped = Math.round(Math.abs(b.x - a.x) / 130) - 1;
    const lift = skipped > 0 && a.y === b.y ? 28 + 12 * skipped : 0;
    const [cx, cy] = [(a.x + b.x) / 2, (a.y + b.y) / 2 - 2 * lift];
    // Stop at the child's circle: back off 20 px along the curve's last tangent.
    const [tx, ty] = lift ? [b.x - cx, b.y - cy] : [b.x - a.x, b.y - a.y];
    const norm = Math.hypot(tx, ty) || 1;
    const [ex, ey] = [b.x - (20 * tx) / norm, b.y - (20 * ty) / norm];
    const d = lift ? `M ${a.x} ${a.y - 16} Q ${cx} ${cy} ${ex} ${ey}` : `M ${a.x + 16} ${a.y} L ${ex} ${ey}`;
    return s('path', { d, fill: 'none', stroke: '#9aa5b4', 'stroke-width': 2, 'marker-end': 'url(#arrow)', 'data-edge': `${p}-${v.id}` });
  }));
  const arrow = s('defs', {}, s('marker', { id: 'arrow', viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 6, markerHeight: 6, orient: 'auto-start-reverse' },
    s('path', { d: 'M 0 0 L 10 5 L 0 10 z', fill: '#9aa5b4' })));
  const nodes = versions.map((v) => {
    const { x, y } = at.get(v.id) as { x: number; y: number };
    const node = s('g', { class: `node${v.id === selected ? ' selected' : ''}`, 'data-version': v.id, 'data-status': v.status, tabindex: 0, role: 'link' },
      s('title', {}, `v${v.id} ${v.semver}: ${v.status}`),
      s('circle', { cx: x, cy: y, r: 16, fill: '#fff', stroke: colour[v.status] ?? '#666', 'stroke-width': 2 }),
      s('text', { x, y: y + 4, 'text-anchor': 'middle', 'font-size': 11 }, `v${v.id}`),
      s('text', { x, y: y + 32, 'text-anchor': 'middle', 'font-size': 10, fill: '#5b6675' }, v.semver));
    const open = () => { location.hash = `#/models?model=${model}&version=${v.id}`; };
    node.addEventListener('click', open);
    node.addEventListener('keydown', (e) => { if ((e as KeyboardEvent).key === 'Enter') open(); });
    return node;
  });
  // Drawn at its own size at most (a small graph is not blown up), narrower on a phone.
  return s('svg', { class: 'dag', viewBox: `0 0 ${width} ${height}`, style: `max-width:${width}px`, 'data-testid': 'dag', role: 'img', 'aria-label': 'Version graph' },
    arrow, ...edges, ...nodes);
}

async function versionDetail(api: any, v: Version): Promise<HTMLElement> {
  const [layers, adapters, history] = await Promise.all([
    api.query.registry.versionLayers(v.id),
    api.query.registry.versionAdapters(v.id),
    recentEvents(api),
  ]);
  // The verdict: the job whose revealed result this version is, and its verification events.
  const revealed = history.events.find((e) => e.section === 'jobs' && e.method === 'ResultRevealed' && Number(e.data.candidate) === v.id);
  const job = revealed ? Number(revealed.data.job) : undefined;
  const ofJob = history.events.filter((e) => e.section === 'polRewards' && job !== undefined && Number(e.data.job) === job);
  const verified = ofJob.find((e) => e.method === 'Verified');
  const reveals = ofJob.filter((e) => e.method === 'ScoresRevealed');
  const card = h('section', { class: 'card', 'data-testid': 'version-detail', 'data-version': v.id },
    h('h2', {}, `Version v${v.id} (${v.semver}) `, badge(v.status)),
    h('p', {}, 'Weight root ', mono(v.weightRoot, 'weight-root')),
    h('p', {}, 'Proposed by ', account(v.proposer), ` at block #${v.createdAt}; parents: `,
      v.parents.length ? v.parents.map((p) => `v${p}`).join(', ') : 'none (root version)'),
    adapters.isSome
      ? h('p', { 'data-testid': 'adapters' }, 'Low-rank adapters over its parent: ', mono(JSON.stringify(adapters.unwrap().toHuman())))
      : h('p', { class: 'muted' }, 'Whole layers (no adapters).'),
    h('h2', {}, `Layers (${layers.length})`),
    table(['Layer', 'CID', 'Merkle root'], layers.map((l: any) => [
      h('span', { 'data-layer': l.layer.toNumber() }, l.layer.toNumber()), mono(l.cid.toUtf8()), mono(l.merkleRoot.toHex()),
    ]), 'No layers.', 'layers'),
    h('h2', {}, 'Verdict'),
    verdict(v, job, verified, reveals, history.from, history.to));
  return card;
}

function verdict(v: Version, job: number | undefined, verified: any, reveals: any[], from: number, to: number): HTMLElement {
  const window = `blocks #${from}–#${to}`;
  if (v.parents.length === 0) return h('p', { 'data-testid': 'verdict' }, 'A root version: registered with its model, accepted without verification.');
  if (job === undefined) return h('p', { class: 'muted', 'data-testid': 'verdict' }, `No job revealed this version in ${window}.`);
  if (!verified) return h('p', { 'data-testid': 'verdict' }, `Result of job #${job}; no verdict in ${window} yet.`);
  const improvement = Number(verified.data.improvement) / 1e7;
  return h('div', { 'data-testid': 'verdict' },
    h('p', {}, `Job #${job}: `, badge(verified.data.accepted ? 'accepted' : 'rejected', verified.data.accepted ? 'ok' : 'bad'),
      ` at block #${verified.block}; quorum's improvement ${improvement.toFixed(2)} %, base score ${verified.data.base_score ?? verified.data.baseScore}, candidate ${verified.data.candidate_score ?? verified.data.candidateScore}.`),
    table(['Verifier', 'Base score', 'Candidate score', 'Block'], reveals.map((r) => [
      account(String(r.data.verifier)), String(r.data.base_score ?? r.data.baseScore), String(r.data.candidate_score ?? r.data.candidateScore), `#${r.block}`,
    ]), 'No reveals seen.', 'verifiers'));
}
