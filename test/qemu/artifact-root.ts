/**
 * The release tarball (scripts/package.mjs), installed with its own
 * `install.sh --root DIR` into a directory the qemu guest sees through the host
 * root, so the guest runs exactly what an image builder drops into a ramdisk:
 * `DIR/usr/bin/inband-agent` with its bundled Node runtime and native addon.
 * The host root plays the ramdisk's base system (glibc, /bin/sh).
 *
 * The directory is under .cache/ rather than the system temp dir: the guest
 * mounts a tmpfs over the host's /tmp.
 */
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { cacheDir } from '../harness/qemu.js';
import { ensureArtifact, installArtifact, unpackArtifact, type Artifact } from '../package/artifact.js';

export { artifactUnavailable } from '../package/artifact.js';

export interface InstalledArtifact {
  artifact: Artifact;
  /** The root filesystem folder install.sh laid out. */
  root: string;
  /** `<root>/usr/bin/inband-agent`. */
  launcher: string;
  /** ensureArtifact (build when stale, else reuse) and unpack + install, in ms. */
  timings: { ensureMs: number; installMs: number };
  remove(): Promise<void>;
}

export async function installArtifactForGuest(): Promise<InstalledArtifact> {
  let t0 = performance.now();
  const artifact = await ensureArtifact();
  const ensureMs = Math.round(performance.now() - t0);
  t0 = performance.now();
  const base = join(cacheDir(), 'qemu', 'installed');
  await mkdir(base, { recursive: true });
  const dir = await mkdtemp(join(base, 'artifact-'));
  try {
    const release = unpackArtifact(artifact, join(dir, 'unpacked'));
    const root = join(dir, 'root');
    installArtifact(release, root);
    return {
      artifact,
      root,
      launcher: join(root, 'usr', 'bin', 'inband-agent'),
      timings: { ensureMs, installMs: Math.round(performance.now() - t0) },
      remove: () => rm(dir, { recursive: true, force: true }),
    };
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
}
