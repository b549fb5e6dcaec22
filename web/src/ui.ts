// Small DOM helpers shared by the pages: no framework, elements built from data the chain gave.

type Child = Node | string | number | null | undefined | false;
type Attrs = Record<string, string | number | boolean | EventListener | undefined>;

/** An element with attributes (`on…` ones are listeners) and children. */
export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Attrs = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

/** An SVG element. */
export function s(tag: string, attrs: Attrs = {}, ...children: Child[]): SVGElement {
  const el = document.createElementNS('http://www.w3.org/2000/svg', tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

function setAttrs(el: Element, attrs: Attrs) {
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === false) continue;
    if (key.startsWith('on') && typeof value === 'function') el.addEventListener(key.slice(2), value);
    else el.setAttribute(key, value === true ? '' : String(value));
  }
}

function append(el: Element, children: Child[]) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    el.append(typeof child === 'object' ? child : String(child));
  }
}

/** A table in a box that scrolls sideways on narrow screens; `empty` when there are no rows. */
export function table(headers: string[], rows: Child[][], empty: string, testid?: string): HTMLElement {
  if (rows.length === 0) return h('p', { class: 'empty', 'data-testid': testid }, empty);
  return h('div', { class: 'table' },
    h('table', { 'data-testid': testid },
      h('thead', {}, h('tr', {}, ...headers.map((t) => h('th', {}, t)))),
      h('tbody', {}, ...rows.map((cells) => h('tr', {}, ...cells.map((c) => h('td', {}, c)))))));
}

export function stat(label: string, value: Child, testid: string): HTMLElement {
  return h('div', { class: 'stat' }, h('div', { class: 'label' }, label), h('div', { class: 'value', 'data-testid': testid }, value));
}

export function mono(text: string, testid?: string): HTMLElement {
  return h('span', { class: 'mono', 'data-testid': testid, title: text }, text);
}

export function badge(text: string, kind = text): HTMLElement {
  return h('span', { class: `badge ${kind}` }, text);
}

export function errorBox(e: unknown): HTMLElement {
  const message = e instanceof Error ? e.message : String(e);
  return h('div', { class: 'error', role: 'alert' }, message);
}

export const BLY = 10n ** 12n;

/** Plancks as BLY, exactly (bigint arithmetic; trailing zeros of the 12 decimals dropped). */
export function bly(plancks: bigint | string | number): string {
  const p = BigInt(plancks);
  const sign = p < 0n ? '-' : '';
  const abs = p < 0n ? -p : p;
  const whole = abs / BLY;
  const frac = abs % BLY;
  const fracText = frac === 0n ? '' : `.${frac.toString().padStart(12, '0').replace(/0+$/, '')}`;
  return `${sign}${whole.toLocaleString('en-US')}${fracText} BLY`;
}

/** An account shortened for tables; the whole address in its title. */
export function account(address: string): HTMLElement {
  const short = address.length > 16 ? `${address.slice(0, 6)}…${address.slice(-6)}` : address;
  return h('span', { class: 'mono', title: address, 'data-account': address }, short);
}
