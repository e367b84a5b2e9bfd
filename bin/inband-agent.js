#!/usr/bin/env node
// Entry point named by package.json "bin". The TypeScript sources compile to
// dist/ (npm run build); this file only hands over to the compiled CLI.
import('../dist/agent/cli.js').then((m) => m.main(process.argv.slice(2))).then(
  (code) => { if (typeof code === 'number') process.exitCode = code; },
  (err) => {
    if (err && err.code === 'ERR_MODULE_NOT_FOUND' && String(err.message).includes('dist/agent/cli.js')) {
      console.error('inband-agent: not built yet; run `npm ci` (or `npm run build`) in the project root first.');
    } else {
      console.error(`inband-agent: ${err && err.message ? err.message : err}`);
    }
    process.exitCode = 1;
  },
);
