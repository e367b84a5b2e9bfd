/**
 * What every qemu test needs, checked once per file before its suite is
 * declared, so that a missing piece is a visible, counted skip that names what
 * enables it. INBAND_REQUIRE_QEMU=1 (CI) turns a skip into a failure.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { ipmiSimAvailability } from '../harness/ipmi-sim.js';
import { prepareGuestImage, qemuAvailability, PROJECT_ROOT, type GuestImage } from '../harness/qemu.js';
import { artifactUnavailable } from '../package/artifact.js';

/** What the guest's systemd mode runs as PID 1 (from the host root). */
export const SYSTEMD_PATH = '/lib/systemd/systemd';

export const ENABLE_HINT = 'Enable with: scripts/setup.sh --test (qemu-system-x86, busybox-static, openipmi, ipmitool, systemd) and apt access to the Debian archive for the kernel';

export interface QemuGate {
  /** Why the suite cannot run; undefined when it can. */
  skip?: string;
  image?: GuestImage;
}

/**
 * `needFiles`: project files the guest runs, relative to the project root (e.g.
 * the compiled CLI). `artifact`: the test runs the release tarball (built on
 * demand by test/package/artifact.ts). `systemd`: the guest boots the host's
 * systemd as PID 1 (test/harness/qemu.ts GuestOptions.systemd).
 */
export async function qemuGate(needFiles: readonly string[] = [], opts: { artifact?: boolean; systemd?: boolean } = {}): Promise<QemuGate> {
  let skip: string | undefined;
  const q = qemuAvailability();
  const s = ipmiSimAvailability();
  const addon = join(PROJECT_ROOT, 'build', 'Release', 'ipmi_kcs.node');
  if (!q.available) skip = q.reason;
  else if (!s.available) skip = s.reason;
  else if (!existsSync(addon)) skip = `the native addon is not built (${addon}; \`node scripts/build-addon.mjs\` or npm ci builds it)`;
  else {
    const missing = needFiles.find((f) => !existsSync(join(PROJECT_ROOT, f)));
    if (missing) skip = `${missing} is missing (npm run build compiles it)`;
    else if (opts.artifact) skip = artifactUnavailable();
    if (!skip && opts.systemd) {
      const absent = [SYSTEMD_PATH, '/usr/bin/systemctl', '/usr/bin/journalctl'].find((f) => !existsSync(f));
      if (absent) skip = `${absent} is missing (Debian package systemd)`;
    }
  }
  let image: GuestImage | undefined;
  if (!skip) {
    try {
      image = await prepareGuestImage();
    } catch (err) {
      skip = err instanceof Error ? err.message : String(err);
    }
  }
  if (skip && process.env.INBAND_REQUIRE_QEMU === '1') throw new Error(`INBAND_REQUIRE_QEMU=1 but the qemu test cannot run: ${skip}`);
  return skip ? { skip: `${skip}. ${ENABLE_HINT}` } : { image };
}

/** node, with tsx when the calling test runs from source (the guest then runs .ts files too). */
export function guestNode(testUrl: string): string[] {
  return [process.execPath, ...(testUrl.endsWith('.ts') ? ['--import', 'tsx'] : [])];
}
