#!/usr/bin/env node
// Bundles the browser templates (run after `tsc -p tsconfig.json`, which typechecks them) and copies
// the booth UI page:
//  - templates/room (default room-composite template) -> dist/templates/room/{index.html,room.css,room.js}
//    (served at the root of the egress's template server, so the page uses relative paths);
//  - templates/track (track egress without transcoding: encoded frames of one track) -> dist/templates/track;
//  - test/fixtures/egress-sdk-template (a custom template on the real @livekit/egress-sdk)
//    -> dist/test/fixtures/egress-sdk-template/{index.html,template.js}.
import { build } from 'esbuild';
import { copyFile, mkdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

// One livekit-client in every bundle: @livekit/egress-sdk is CommonJS and would otherwise pull in
// livekit-client's UMD build next to the ESM one the template imports.
const singleLivekitClient = {
  name: 'single-livekit-client',
  setup(b) {
    b.onResolve({ filter: /^livekit-client$/ }, () => ({ path: join(root, 'node_modules/livekit-client/dist/livekit-client.esm.mjs') }));
  },
};

const bundles = [
  { src: 'templates/room', entry: 'src/main.ts', out: 'dist/templates/room', js: 'room.js', copy: ['index.html', 'room.css'] },
  { src: 'templates/track', entry: 'src/main.ts', out: 'dist/templates/track', js: 'track.js', copy: ['index.html'] },
  { src: 'test/fixtures/egress-sdk-template', entry: 'main.ts', out: 'dist/test/fixtures/egress-sdk-template', js: 'template.js', copy: ['index.html'] },
];

for (const b of bundles) {
  const outDir = join(root, b.out);
  await mkdir(outDir, { recursive: true });
  await build({
    absWorkingDir: root,
    entryPoints: [join(root, b.src, b.entry)],
    outfile: join(outDir, b.js),
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: ['chrome120'],
    minify: true,
    legalComments: 'none',
    plugins: [singleLivekitClient],
    logLevel: 'warning',
  });
  for (const f of b.copy) await copyFile(join(root, b.src, f), join(outDir, f));
}

// The booth UI (renderer/): tsc compiles its scripts into dist/renderer; its page and style go next
// to them, so the Electron app and `egress console` serve one folder.
await mkdir(join(root, 'dist/renderer'), { recursive: true });
for (const f of ['index.html', 'booth.css']) await copyFile(join(root, 'renderer', f), join(root, 'dist/renderer', f));
