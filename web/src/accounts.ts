// Accounts a page may name: any SS58 address, and on a dev or local chain the well-known dev
// accounts (whose secret keys are public, so they may also sign there).
import { Keyring } from '@polkadot/keyring';
import { cryptoWaitReady, decodeAddress, encodeAddress } from '@polkadot/util-crypto';

export const DEV_NAMES = ['Alice', 'Bob', 'Charlie', 'Dave', 'Eve', 'Ferdie'];

let keyring: Keyring | undefined;

export async function devKeyring(ss58Format: number): Promise<Keyring> {
  if (!keyring) {
    await cryptoWaitReady();
    keyring = new Keyring({ type: 'sr25519', ss58Format });
    for (const name of DEV_NAMES) keyring.addFromUri(`//${name}`, { name });
  }
  return keyring;
}

/** The address for `text`: a dev name (on a dev chain) or an SS58 address; an Error otherwise. */
export async function resolveAccount(text: string, devChain: boolean, ss58Format: number): Promise<string> {
  const trimmed = text.trim().replace(/^\/\//, '');
  const dev = DEV_NAMES.find((n) => n.toLowerCase() === trimmed.toLowerCase());
  if (dev) {
    if (!devChain) throw new Error(`${dev} is a dev account: only dev and local chains have them.`);
    return (await devKeyring(ss58Format)).getPairs().find((p) => p.meta.name === dev)!.address;
  }
  try {
    // In this chain's SS58 format, as events name accounts (a hex public key is accepted too).
    return encodeAddress(decodeAddress(trimmed), ss58Format);
  } catch {
    throw new Error(`"${text}" is not an SS58 address${devChain ? ' or a dev account name' : ''}.`);
  }
}
