// Builds dist/ (app.js, index.html, style.css) from src/. The controller embeds dist/ in the `octo`
// binary, so dist/ is committed; `node build.mjs --check` fails when it differs from a fresh build
// (tests/tests/web_client.rs runs it).
import { build } from 'esbuild';
import { readFile, writeFile, mkdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const here = path.dirname(fileURLToPath(import.meta.url));
const check = process.argv.includes('--check');

const result = await build({
  entryPoints: [path.join(here, 'src/main.js')],
  bundle: true,
  format: 'iife',
  target: ['chrome111', 'firefox115', 'safari16'],
  minify: true,
  legalComments: 'eof',
  charset: 'utf8',
  write: false,
  outfile: path.join(here, 'dist/app.js'),
  logLevel: 'warning',
});

const outputs = new Map([
  ['app.js', result.outputFiles[0].text],
  ['index.html', await readFile(path.join(here, 'src/index.html'), 'utf8')],
  ['style.css', await readFile(path.join(here, 'src/style.css'), 'utf8')],
]);

let stale = [];
for (const [name, text] of outputs) {
  const file = path.join(here, 'dist', name);
  if (check) {
    const committed = await readFile(file, 'utf8').catch(() => null);
    if (committed !== text) stale.push(name);
  } else {
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(file, text);
  }
}
if (stale.length) {
  console.error(`client-web/dist is stale (${stale.join(', ')}): run \`npm ci --prefix client-web && node client-web/build.mjs\` and commit dist/`);
  process.exit(1);
}
console.log(check ? 'client-web/dist matches its sources' : `built ${[...outputs.keys()].map((n) => `dist/${n}`).join(', ')}`);
