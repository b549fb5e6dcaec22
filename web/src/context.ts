import type { ApiPromise } from '@polkadot/api';

/** What every page gets: the chain connection and what the gateway said about itself. */
export interface Context {
  api: ApiPromise;
  config: {
    /** The node's WebSocket RPC. */
    node: string;
    /** The version the gateway serves (`null` without a gateway). */
    version: number | null;
    /** Its model name in the OpenAI API (`blyan-<version>`). */
    model: string | null;
    /** Whether the gateway's API wants a bearer key. */
    needs_key: boolean;
    /** Whether the app is served by a gateway (the playground needs one). */
    gateway: boolean;
  };
  /** A dev or local chain: its well-known dev accounts may sign. */
  devChain: boolean;
}

/** Renders a page into `el`; resolves once its data is shown, with what to stop when leaving. */
export type Page = (ctx: Context, el: HTMLElement, params: URLSearchParams) => Promise<(() => void) | void>;
