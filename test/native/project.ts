/** Locating the project tree from a test file, whether run from source (tsx) or from dist/. */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The directory holding binding.gyp: two levels up from test/native, three from dist/test/native. */
export function projectRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    if (existsSync(path.join(dir, 'binding.gyp'))) return dir;
    dir = path.dirname(dir);
  }
  throw new Error('test/native: cannot find the project root (no binding.gyp above this file)');
}

export const addonSource = (): string => path.join(projectRoot(), 'ipmi-kcs', 'native', 'ipmi_kcs.c');
export const builtAddon = (): string => path.join(projectRoot(), 'build', 'Release', 'ipmi_kcs.node');

/** Why the addon tests cannot run, or undefined when the addon is built. */
export function addonMissing(): string | undefined {
  if (process.platform !== 'linux') return `the native addon is Linux-only (this is ${process.platform})`;
  if (!existsSync(builtAddon())) return `build/Release/ipmi_kcs.node is missing: run \`node scripts/build-addon.mjs\` first`;
  return undefined;
}
