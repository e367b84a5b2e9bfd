/**
 * The release tarball for tests: built by scripts/package.mjs only when its
 * inputs changed (a tarball from `npm run package` earlier in the same run is
 * reused), unpacked and installed into a temporary root with its own install.sh.
 * Other test files (the qemu guest) can use the same helpers.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export interface ArtifactManifest {
  version: string;
  node: string;
  arch: string;
  inputs: string;
  compiledFrom: string;
  strippedRuntime: boolean;
  dependencies: number;
  tarball: string;
  sha256: string;
  sizes: { runtime: number; appJs: number; nodeModules: number; addon: number; unpacked: number; tarball: number };
  files: number;
  buildMs: number;
  timings: Record<string, number>;
}

export interface Artifact {
  name: string;
  tarball: string;
  manifest: ArtifactManifest;
  /** True when an up-to-date tarball was already there. */
  reused: boolean;
}

interface PackageScript {
  ensureArtifact(opts: { root: string }): Promise<Artifact>;
}

/** The project root (package.json named inband-agent), from test/package or dist/test/package. */
export function projectRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    const pkg = path.join(dir, 'package.json');
    if (existsSync(pkg) && (JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'inband-agent') return dir;
    dir = path.dirname(dir);
  }
  throw new Error('test/package: cannot find the project root (no inband-agent package.json above this file)');
}

/** Why the artifact cannot be built here, or undefined. */
export function artifactUnavailable(): string | undefined {
  if (process.platform !== 'linux') return `the artifact is a Linux ramdisk payload (this is ${process.platform})`;
  if (!existsSync(path.join(projectRoot(), 'build', 'Release', 'ipmi_kcs.node'))) {
    return 'build/Release/ipmi_kcs.node is missing: run `node scripts/build-addon.mjs` (npm ci does) first';
  }
  return undefined;
}

/** Builds the artifact if its inputs changed since the last build, else returns the existing one. */
export async function ensureArtifact(): Promise<Artifact> {
  const root = projectRoot();
  const script = (await import(pathToFileURL(path.join(root, 'scripts', 'package.mjs')).href)) as PackageScript;
  return script.ensureArtifact({ root });
}

/** Unpacks the tarball under `workDir`; returns the release directory (holding install.sh). */
export function unpackArtifact(artifact: Artifact, workDir: string): string {
  mkdirSync(workDir, { recursive: true });
  const r = spawnSync('tar', ['-xzf', artifact.tarball, '-C', workDir], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`tar -xzf ${artifact.tarball} failed: ${r.stderr}`);
  return path.join(workDir, artifact.name);
}

/** Runs the release's install.sh into `rootDir`; returns its output. Throws when it fails. */
export function installArtifact(releaseDir: string, rootDir: string, args: readonly string[] = []): { stdout: string; stderr: string } {
  const r = spawnSync(path.join(releaseDir, 'install.sh'), ['--root', rootDir, ...args], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`install.sh --root ${rootDir} ${args.join(' ')} failed (${r.status}): ${r.stdout}${r.stderr}`);
  return { stdout: r.stdout, stderr: r.stderr };
}
