// Bundles the seed-app stand-in (client.js with mediasoup-client and socket.io-client from
// tests/e2e/node_modules) into a directory that `octo --web-root` serves. Built at test time, not
// committed: nothing else serves it.
import { build } from 'esbuild';
import { copyFile, mkdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const here = path.dirname(fileURLToPath(import.meta.url));

/** Writes index.html and client.js (the bundle) into `outDir`. */
export async function buildSeedPage(outDir) {
  await mkdir(outDir, { recursive: true });
  await build({
    entryPoints: [path.join(here, 'client.js')],
    bundle: true,
    format: 'iife',
    target: ['chrome111'],
    sourcemap: 'inline',
    outfile: path.join(outDir, 'client.js'),
    logLevel: 'warning',
  });
  await copyFile(path.join(here, 'index.html'), path.join(outDir, 'index.html'));
}
