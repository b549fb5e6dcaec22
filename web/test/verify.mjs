// Checks web/src/verify.ts (what the playground checks of an answer in the browser) against a
// route the worker wrote with its own encoding, signatures and Merkle roots
// (worker/tests/web.rs): `node test/verify.mjs FIXTURE.json`.
import { build } from 'esbuild';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const web = join(dirname(fileURLToPath(import.meta.url)), '..');
const fixture = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const dir = mkdtempSync(join(tmpdir(), 'blyan-verify-'));
try {
  const out = join(dir, 'verify.mjs');
  await build({
    stdin: {
      contents: "export * from './src/verify.ts'; export { cryptoWaitReady } from '@polkadot/util-crypto'; export { hexToU8a } from '@polkadot/util';",
      resolveDir: web,
      loader: 'ts',
    },
    bundle: true, format: 'esm', platform: 'node', outfile: out, logLevel: 'error',
  });
  const v = await import(pathToFileURL(out).href);
  await v.cryptoWaitReady();
  const genesis = v.hexToU8a(`0x${fixture.genesis}`);
  const route = fixture.route;
  const failures = [];
  const check = (ok, what) => { if (!ok) failures.push(what); };
  route.forEach((c, i) => check(v.signedByStage(c, genesis), `stage ${i}: its signature`));
  for (const { stages, root } of fixture.roots) {
    check(v.sameHex(v.commitmentsRoot(route.slice(0, stages)), root), `the root of ${stages} stage(s)`);
  }
  const three = fixture.roots.find((r) => r.stages === 3).root;
  // Another answer is neither signed nor in the root; the same stages in another order, or a
  // missing stage, give another root; a signature is for one chain only; junk is refused.
  const tampered = { ...route[2], transcript: 'ff'.repeat(32) };
  check(!v.signedByStage(tampered, genesis), 'a tampered commitment: signature refused');
  check(!v.sameHex(v.commitmentsRoot([route[0], route[1], tampered]), three), 'a tampered commitment: another root');
  check(!v.sameHex(v.commitmentsRoot([route[1], route[0], route[2]]), three), 'stages swapped: another root');
  check(!v.sameHex(v.commitmentsRoot([route[0], null, route[2]]), three), 'a stage missing: another root');
  check(!v.signedByStage(route[0], new Uint8Array(32)), 'another chain: signature refused');
  check(!v.signedByStage({ ...route[0], server: 'not an address' }, genesis), 'a malformed commitment: refused, not thrown');
  if (failures.length) {
    console.error(`FAILED: ${failures.join('; ')}`);
    process.exit(1);
  }
  console.log(`ok verify.ts agrees with the worker on ${route.length} stages (signatures, roots of 1..${route.length})`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
