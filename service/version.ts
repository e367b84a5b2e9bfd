/**
 * The product's version, read from package.json: the one place it is written.
 * Compiled, this file is dist/service/version.js (package.json two folders up,
 * in a checkout and in the ramdisk package alike); run from source, one up.
 */
import { readFileSync } from 'node:fs';

function readVersion(): string {
  for (const rel of ['../../package.json', '../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(rel, import.meta.url), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'inband-agent' && typeof pkg.version === 'string') return pkg.version;
    } catch {
      // not there: try the next place
    }
  }
  throw new Error('inband-agent: package.json not found beside the compiled sources; the installation is incomplete');
}

export const VERSION: string = readVersion();
