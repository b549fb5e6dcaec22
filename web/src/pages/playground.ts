// Playground: chat with the version this gateway serves through its OpenAI API (streamed), and
// see who served each answer (the route's stages and what they signed) and the receipts paid,
// checked in the browser: every stage's signature, and that the receipts pay for those answers.
import type { ApiPromise } from '@polkadot/api';
import type { Page } from '../context';
import { account, badge, bly, errorBox, h, mono, table } from '../ui';
import { type Commitment, commitmentsRoot, sameHex, signedByStage } from '../verify';

interface Message { role: 'user' | 'assistant'; content: string }
interface Stage { server: string | null; price_per_token: string; endpoint: string; commitment: Commitment | null }
interface Receipt { server: string; nonce: number; tokens_in: number; tokens_out: number; price_per_token: string; free: boolean; commitments: string }
interface Served { route: Stage[]; receipts: Receipt[]; commitments_root: string }

const KEY_STORE = 'blyan.apiKey';

export const playgroundPage: Page = async ({ api, config }, el) => {
  el.append(h('h1', {}, 'Playground'));
  if (!config.gateway || !config.model) {
    el.append(h('p', { class: 'empty' }, 'The playground talks to a gateway: open this app from `blyan-worker gateway --web`.'));
    return;
  }
  const messages: Message[] = [];
  const transcript = h('div', { class: 'chat', 'data-testid': 'transcript' });
  const state = h('p', { class: 'muted', 'data-testid': 'chat-state', 'data-state': 'idle' }, `Model ${config.model}.`);
  const served = h('div', { 'data-testid': 'served' });
  const key = h('input', { type: 'password', placeholder: 'API key (Bearer)', 'aria-label': 'API key', value: localStorage.getItem(KEY_STORE) ?? '' });
  const prompt = h('textarea', { placeholder: 'Ask something…', 'aria-label': 'Message', 'data-testid': 'prompt' });
  const maxTokens = h('input', { type: 'number', min: 1, max: 4096, value: 32, 'aria-label': 'Max tokens', style: 'width:6rem' });
  const temperature = h('input', { type: 'number', min: 0, max: 2, step: 0.1, value: 0, 'aria-label': 'Temperature', style: 'width:5rem' });
  const send = h('button', { type: 'submit', 'data-testid': 'send' }, 'Send');
  const form = h('form', { class: 'card' },
    prompt,
    h('div', { class: 'inline', style: 'margin-top:.5rem' },
      config.needs_key ? key : null,
      h('label', {}, 'max tokens ', maxTokens),
      h('label', {}, 'temperature ', temperature),
      send));
  form.classList.add('inline');
  let controller: AbortController | undefined;

  const show = () => transcript.replaceChildren(...messages.map((m, i) =>
    h('div', { class: `message ${m.role}`, 'data-role': m.role, 'data-testid': i === messages.length - 1 && m.role === 'assistant' ? 'reply' : undefined }, m.content)));
  const setState = (s: string, text: string) => { state.dataset.state = s; state.textContent = text; };

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const text = prompt.value.trim();
    if (!text || controller) return;
    if (config.needs_key) localStorage.setItem(KEY_STORE, key.value);
    messages.push({ role: 'user', content: text });
    const reply: Message = { role: 'assistant', content: '' };
    messages.push(reply);
    prompt.value = '';
    show();
    send.disabled = true;
    served.replaceChildren();
    setState('streaming', 'Generating…');
    controller = new AbortController();
    try {
      const headers: Record<string, string> = { 'content-type': 'application/json' };
      if (config.needs_key && key.value) headers.authorization = `Bearer ${key.value}`;
      const response = await fetch('/v1/chat/completions', {
        method: 'POST',
        headers,
        signal: controller.signal,
        body: JSON.stringify({
          model: config.model,
          messages: messages.slice(0, -1),
          stream: true,
          stream_options: { include_usage: true },
          max_tokens: Number(maxTokens.value),
          temperature: Number(temperature.value),
        }),
      });
      if (!response.ok || !response.body) {
        const body = await response.json().catch(() => ({}));
        throw new Error(body?.error?.message ? `${response.status}: ${body.error.message}` : `the gateway answered ${response.status}`);
      }
      let blyan: Served | undefined;
      let usage: { prompt_tokens: number; completion_tokens: number } | undefined;
      let finished = false;
      // Server-sent events: blank-line separated, `data:` lines joined by newlines; the stream
      // is complete only with its `[DONE]`.
      const handle = (event: string) => {
        const data = event.split('\n').filter((l) => l.startsWith('data:')).map((l) => l.slice(5).replace(/^ /, '')).join('\n');
        if (!data) return;
        if (data === '[DONE]') { finished = true; return; }
        const chunk = JSON.parse(data);
        if (chunk.error) throw new Error(chunk.error.message);
        const delta = chunk.choices?.[0]?.delta?.content;
        if (delta) { reply.content += delta; show(); }
        if (chunk.blyan?.route) blyan = chunk.blyan;
        if (chunk.usage) usage = chunk.usage;
      };
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        // A `\r` ending this read may be the first half of a `\r\n`: kept back until the next.
        const held = buffer.endsWith('\r') ? '\r' : '';
        buffer = buffer.slice(0, buffer.length - held.length).replace(/\r\n?/g, '\n');
        let cut;
        while ((cut = buffer.indexOf('\n\n')) >= 0) {
          handle(buffer.slice(0, cut));
          buffer = buffer.slice(cut + 2);
        }
        buffer += held;
      }
      buffer = buffer.replace(/\r\n?/g, '\n');
      if (buffer.trim()) handle(buffer);
      if (!finished) throw new Error('the stream ended before the answer was complete (no [DONE])');
      setState('done', usage ? `${usage.prompt_tokens} prompt + ${usage.completion_tokens} completion tokens.` : 'Done.');
      if (blyan) served.replaceChildren(...servedBy(blyan, api));
    } catch (e) {
      // The exchange is taken back whole (a next request must not carry a dangling question),
      // and the question given back to edit or resend.
      messages.splice(-2, 2);
      prompt.value = text;
      show();
      setState('error', 'Failed.');
      served.replaceChildren(errorBox(e));
    } finally {
      controller = undefined;
      send.disabled = false;
    }
  });

  el.append(state, transcript, form, served);
  return () => controller?.abort();
};

function servedBy(b: Served, api: ApiPromise): HTMLElement[] {
  const genesis = api.genesisHash.toU8a();
  return [
    h('h2', {}, 'Route'),
    table(['Stage', 'Server', 'Layers', 'Endpoint', 'Price / token', 'Signed transcript', 'Signature'], b.route.map((stage, i) => {
      const c = stage.commitment;
      const signed = c !== null && c.server === stage.server && signedByStage(c, genesis);
      return [
        i + 1,
        stage.server ? account(stage.server) : h('span', { class: 'muted' }, 'unsigned'),
        c ? `${c.layers[0]}–${c.layers[1]}` : '—',
        mono(stage.endpoint),
        bly(stage.price_per_token),
        c ? mono(c.transcript) : h('span', { class: 'muted' }, 'none'),
        c ? h('span', { 'data-signed': String(signed) }, badge(signed ? 'valid' : 'INVALID', signed ? 'ok' : 'bad')) : '—',
      ];
    }), 'No stages.', 'route'),
    verdict(b, genesis),
    h('h2', {}, 'Receipts signed by the gateway'),
    table(['Server', 'Nonce', 'Tokens in', 'Tokens out', 'Price / token', 'Amount', 'Pays for (root)'], b.receipts.map((r) => [
      account(r.server), r.nonce, r.tokens_in, r.tokens_out, bly(r.price_per_token),
      h('span', { 'data-amount': String(BigInt(r.price_per_token) * BigInt(r.tokens_in + r.tokens_out)) },
        r.free ? 'free tier' : bly(BigInt(r.price_per_token) * BigInt(r.tokens_in + r.tokens_out))),
      mono(r.commitments),
    ]), 'No receipts (an unpaid gateway).', 'receipts'),
  ];
}

/** This browser's own check of the answer: every stage signed what it answered, and every
 * receipt pays for exactly those answers (the root of the route's commitments). */
function verdict(b: Served, genesis: Uint8Array): HTMLElement {
  const route = b.route.map((s) => s.commitment);
  let root = '';
  let problem: string | null = null;
  try {
    root = commitmentsRoot(route);
    if (route.some((c, i) => c === null || c.server !== b.route[i].server || !signedByStage(c, genesis))) problem = 'a stage did not sign what it answered';
    else if (!sameHex(root, b.commitments_root)) problem = 'the gateway names another root than the route\'s commitments give';
    else if (b.receipts.some((r) => !sameHex(r.commitments, root))) problem = 'a receipt pays for other answers than the route\'s';
  } catch (e) {
    problem = `unreadable commitment: ${e instanceof Error ? e.message : String(e)}`;
  }
  return h('p', { 'data-testid': 'verified', 'data-verified': String(problem === null), 'data-root': root },
    problem === null
      ? `Checked in this browser: every stage signed its answers, and every receipt pays for exactly them (root ${root}).`
      : `Not verified: ${problem}.`);
}
