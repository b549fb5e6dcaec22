// The app's shell: reads where the chain is (the gateway's /web/config.json, or `?node=` in the
// URL), connects @polkadot/api and renders the page named in the URL's hash. Each page reads the
// chain itself; nothing is invented client-side.
import { ApiPromise, WsProvider } from '@polkadot/api';
import { errorBox, h } from './ui';
import type { Context, Page } from './context';
import { networkPage } from './pages/network';
import { modelsPage } from './pages/models';
import { jobsPage } from './pages/jobs';
import { serversPage } from './pages/servers';
import { playgroundPage } from './pages/playground';
import { minerPage } from './pages/miner';
import { governancePage } from './pages/governance';

const pages: Record<string, Page> = {
  network: networkPage,
  models: modelsPage,
  jobs: jobsPage,
  servers: serversPage,
  playground: playgroundPage,
  miner: minerPage,
  governance: governancePage,
};

const main = document.getElementById('page') as HTMLElement;
const connection = document.getElementById('connection') as HTMLElement;
let cleanup: (() => void) | void;
let rendering = 0;

async function loadConfig(): Promise<Context['config']> {
  const query = new URLSearchParams(location.search);
  let config: Partial<Context['config']> = {};
  try {
    const response = await fetch('/web/config.json');
    if (response.ok) config = await response.json();
  } catch {
    // Served without a gateway: the node comes from the URL.
  }
  const node = query.get('node') ?? config.node;
  if (!node) throw new Error('No node to connect to: open this page from a gateway (blyan-worker gateway --web), or add ?node=ws://… to the URL.');
  return { node, version: config.version ?? null, model: config.model ?? null, needs_key: config.needs_key ?? false, gateway: config.version != null };
}

/** The page and its parameters from `#/page?key=value`. */
function route(): { name: string; params: URLSearchParams } {
  const [path, query] = location.hash.replace(/^#\/?/, '').split('?');
  const name = Object.hasOwn(pages, path) ? path : 'network';
  return { name, params: new URLSearchParams(query ?? '') };
}

async function render(ctx: Context) {
  const turn = ++rendering;
  if (cleanup) cleanup();
  cleanup = undefined;
  const { name, params } = route();
  for (const a of document.querySelectorAll('nav a')) a.classList.toggle('active', a.getAttribute('href') === `#/${name}`);
  main.dataset.page = name;
  main.dataset.ready = '';
  delete main.dataset.error;
  main.replaceChildren(h('p', { class: 'loading' }, 'Loading…'));
  const el = h('div');
  try {
    const done = await pages[name](ctx, el, params);
    if (turn !== rendering) {
      if (done) done();
      return;
    }
    cleanup = done;
    main.replaceChildren(el);
  } catch (e) {
    if (turn !== rendering) return;
    console.error(e);
    main.replaceChildren(errorBox(e));
    main.dataset.error = '1';
  }
  main.dataset.ready = '1';
}

async function start() {
  let config: Context['config'];
  try {
    config = await loadConfig();
  } catch (e) {
    main.replaceChildren(errorBox(e));
    connection.textContent = 'no node';
    connection.className = 'connection down';
    return;
  }
  const provider = new WsProvider(config.node);
  let ready = false;
  const down = () => {
    connection.textContent = 'node unreachable, retrying…';
    connection.className = 'connection down';
    // Before the first connection the page has nothing to show but this.
    if (!ready) main.replaceChildren(errorBox(`Cannot reach the node at ${config.node}; retrying.`));
  };
  provider.on('disconnected', down);
  provider.on('error', down);
  provider.on('connected', () => { connection.textContent = `connected to ${config.node}`; connection.className = 'connection live'; });
  const api = await ApiPromise.create({ provider, noInitWarn: true, throwOnConnect: false });
  ready = true;
  const chainType = await api.rpc.system.chainType();
  const ctx: Context = { api, config, devChain: chainType.isDevelopment || chainType.isLocal };
  window.addEventListener('hashchange', () => void render(ctx));
  await render(ctx);
}

void start();
