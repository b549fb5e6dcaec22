// What a client can check of an answer without trusting the gateway: each stage's sr25519
// signature over its commitment (the transcript of what it answered), and that the receipts pay
// for exactly those answers (the Merkle root of the route's commitments). The encodings mirror
// `blyan_primitives::inference` (`chunk_commitment_payload`, `commitment_leaf`,
// `commitments_root`); the browser test compares the result with the gateway's.
import { bnToU8a, hexToU8a, stringToU8a, u8aConcat, u8aEq, u8aToHex } from '@polkadot/util';
import { blake2AsU8a, decodeAddress, sr25519Verify } from '@polkadot/util-crypto';

/** A stage's signed commitment, as the gateway's answer shows it. */
export interface Commitment {
  server: string;
  version: number;
  layers: [number, number];
  session: string;
  positions: number;
  transcript: string;
  bit_exact: boolean;
  signature: string;
}

const le = (value: number, bits: number) => bnToU8a(value, { bitLength: bits, isLe: true });
const bytes = (hex: string, length: number) => {
  const b = hexToU8a(hex.startsWith('0x') ? hex : `0x${hex}`);
  if (b.length !== length) throw new Error(`expected ${length} bytes, got ${b.length}`);
  return b;
};

/** The commitment's SCALE bytes (field by field, as the Rust struct declares them). */
function scale(c: Commitment): Uint8Array {
  return u8aConcat(
    decodeAddress(c.server), le(c.version, 64), le(c.layers[0], 16), le(c.layers[1], 16),
    bytes(c.session, 16), le(c.positions, 32), bytes(c.transcript, 32), new Uint8Array([c.bit_exact ? 1 : 0]),
  );
}

/** Whether the stage named in `c` signed it, on the chain of `genesis` (false for a malformed
 * commitment). */
export function signedByStage(c: Commitment, genesis: Uint8Array): boolean {
  try {
    const payload = u8aConcat(stringToU8a('blyan/chunk'), genesis, scale(c));
    return sr25519Verify(payload, bytes(c.signature, 64), decodeAddress(c.server));
  } catch {
    return false;
  }
}

/** The Merkle root of a route's commitments (zero leaf for a stage that signed nothing). */
export function commitmentsRoot(route: (Commitment | null)[]): string {
  let row = route.map((c) => (c ? blake2AsU8a(u8aConcat(stringToU8a('blyan/commitment'), scale(c)), 256) : new Uint8Array(32)));
  if (row.length === 0) return u8aToHex(new Uint8Array(32));
  // binary-merkle-tree: pairs hashed left ‖ right, the last node of an odd row promoted.
  while (row.length > 1) {
    const next: Uint8Array[] = [];
    for (let i = 0; i < row.length; i += 2) next.push(i + 1 < row.length ? blake2AsU8a(u8aConcat(row[i], row[i + 1]), 256) : row[i]);
    row = next;
  }
  return u8aToHex(row[0]);
}

/** Whether two hex strings (with or without `0x`) are the same bytes. */
export function sameHex(a: string, b: string): boolean {
  try {
    return u8aEq(hexToU8a(a.startsWith('0x') ? a : `0x${a}`), hexToU8a(b.startsWith('0x') ? b : `0x${b}`));
  } catch {
    return false;
  }
}
