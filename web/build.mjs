// Bundles the app (src/main.ts and what it imports, @polkadot/api included) into dist/ with
// esbuild, next to index.html and app.css: what `blyan-worker gateway --web web/dist` serves.
import { build } from 'esbuild';
import { copyFileSync, mkdirSync } from 'node:fs';

mkdirSync('dist', { recursive: true });
await build({
  entryPoints: ['src/main.ts'],
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: ['es2022'],
  minify: true,
  sourcemap: true,
  outfile: 'dist/app.js',
  logLevel: 'warning',
});
copyFileSync('index.html', 'dist/index.html');
copyFileSync('app.css', 'dist/app.css');
console.log('built web/dist');
