// client.mjs: the unmodified tuf-js updater, pointed at an Outpost mirror.
//
//   node client.mjs --root ROOT.json --metadata-url URL --targets-url URL \
//        --dir STATE_DIR --target PATH --out FILE
//
// It initialises trust from ROOT.json (only when STATE_DIR has no root
// yet, so rollback protection holds across runs), refreshes the
// metadata, looks up the target and downloads it, verified, to FILE.
// It prints one JSON line {"target","length","sha256","file"} and exits 0,
// or prints the error and exits 1.
import { Updater } from 'tuf-js';
import fs from 'node:fs';
import path from 'node:path';

function args(argv) {
  const out = {};
  for (let i = 0; i < argv.length; i += 2) {
    const k = argv[i];
    if (!k.startsWith('--') || i + 1 >= argv.length) throw new Error(`bad argument ${k}`);
    out[k.slice(2)] = argv[i + 1];
  }
  for (const need of ['root', 'metadata-url', 'targets-url', 'dir', 'target', 'out']) {
    if (!out[need]) throw new Error(`--${need} is required`);
  }
  return out;
}

async function main() {
  const a = args(process.argv.slice(2));
  const metadataDir = path.join(a.dir, 'metadata');
  const targetDir = path.join(a.dir, 'targets');
  fs.mkdirSync(metadataDir, { recursive: true, mode: 0o700 });
  fs.mkdirSync(targetDir, { recursive: true, mode: 0o700 });
  const trusted = path.join(metadataDir, 'root.json');
  if (!fs.existsSync(trusted)) fs.copyFileSync(a.root, trusted);
  const updater = new Updater({
    metadataDir,
    metadataBaseUrl: a['metadata-url'],
    targetDir,
    targetBaseUrl: a['targets-url'],
  });
  await updater.refresh();
  const info = await updater.getTargetInfo(a.target);
  if (!info) throw new Error(`target ${a.target} not found in the signed metadata`);
  const file = await updater.downloadTarget(info, a.out);
  console.log(JSON.stringify({ target: a.target, length: info.length, sha256: info.hashes.sha256, file }));
}

main().catch((err) => {
  console.error(`tuf-js: ${err && err.message ? err.message : err}`);
  process.exit(1);
});
