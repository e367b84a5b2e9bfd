#!/usr/bin/env node
// Entry point named by package.json "bin": one command, two programs.
// `inband-agent conductor ...` is the conductor side (beside Ironic); every
// other command is the agent (on the node). The two programs never import
// each other; this file only picks one and hands over.
//
// `npm run build` compiles the TypeScript sources to dist/ and bundles them
// into dist/bundle/ (scripts/bundle.mjs), where each command loads only the
// chunks it needs. The bundle runs when it is there; a tree compiled by tsc
// alone runs from dist/<program>/cli.js.
import { existsSync, readFileSync } from 'node:fs';

const argv = process.argv.slice(2);
// `--version` is answered here, from package.json (the one version source,
// as service/version.ts reads it), without loading either program: scripts
// and image builders call it to check an install, and it then costs little
// more than Node's own start.
if (argv.length === 1 && (argv[0] === '--version' || argv[0] === 'version')) {
  const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
  process.stdout.write(`inband-agent ${version}\n`);
  process.exit(0);
}
const program = argv[0] === 'conductor' ? 'conductor' : 'agent';
const bundle = new URL(`../dist/bundle/${program}.js`, import.meta.url);
const entry = existsSync(bundle) ? bundle.href : `../dist/${program}/cli.js`;
import(entry).then((m) => m.main(program === 'conductor' ? argv.slice(1) : argv)).then(
  (code) => { if (typeof code === 'number') process.exitCode = code; },
  (err) => {
    if (err && err.code === 'ERR_MODULE_NOT_FOUND' && String(err.message).includes(`dist/${program}/cli.js`)) {
      // The ramdisk package carries the agent only; a checkout may simply not be built yet.
      const agentThere = existsSync(new URL('../dist/agent/cli.js', import.meta.url)) || existsSync(new URL('../dist/bundle/agent.js', import.meta.url));
      console.error(program === 'conductor' && agentThere
        ? 'inband-agent: the conductor side is not part of this installation (the ramdisk package carries the agent only); run it from a checkout or an install beside Ironic.'
        : 'inband-agent: not built yet; run `npm ci` (or `npm run build`) in the project root first.');
    } else {
      console.error(`inband-agent: ${err && err.message ? err.message : err}`);
    }
    process.exitCode = 1;
  },
);
