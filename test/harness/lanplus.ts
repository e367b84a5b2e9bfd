/**
 * Out-of-band proof of BMC credentials: an RMCP+ (lanplus) session with
 * `ipmitool -I lanplus -C 3 … mc info`. The strongest check there is that a
 * user set in-band really works (the system interface has no sessions).
 *
 * The password goes to ipmitool through its environment (`-E` reads
 * IPMI_PASSWORD), never on the command line, where /proc/<pid>/cmdline would
 * show it to every user of the machine.
 */
import { spawn } from 'node:child_process';

export interface LanplusLoginOptions {
  host: string;
  port: number;
  user: string;
  password: string;
  /** Kill ipmitool after this long. Default 10000 ms. */
  timeoutMs?: number;
  ipmitoolPath?: string;
}

export interface LanplusLoginResult {
  ok: boolean;
  exitCode: number | null;
  /** ipmitool's stderr, trimmed and cut to 300 characters (it never contains the password). */
  stderr: string;
  /** Parsed from `mc info` on success, e.g. "2.0". */
  ipmiVersion?: string;
  elapsedMs: number;
}

/**
 * Cipher suite 3 (RAKP-HMAC-SHA1, HMAC-SHA1-96, AES-CBC-128): without `-C`,
 * ipmitool first asks for Get Channel Cipher Suites, which ipmi_sim lacks, and
 * every call then takes ~10 s.
 */
export const LANPLUS_CIPHER_SUITE = '3';

export function lanplusLogin(opts: LanplusLoginOptions): Promise<LanplusLoginResult> {
  const { host, port, user, password } = opts;
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const started = performance.now();
  const args = ['-I', 'lanplus', '-C', LANPLUS_CIPHER_SUITE, '-H', host, '-p', String(port), '-U', user, '-E', '-N', '1', '-R', '2', 'mc', 'info'];
  return new Promise((resolve) => {
    const child = spawn(opts.ipmitoolPath ?? '/usr/bin/ipmitool', args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LANG: 'C', IPMI_PASSWORD: password },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    const finish = (exitCode: number | null, extra = ''): void => {
      clearTimeout(timer);
      const ver = /IPMI Version\s*:\s*(\S+)/.exec(stdout);
      const summary = (stderr + extra).replace(/\s+/g, ' ').trim().slice(0, 300);
      resolve({
        ok: exitCode === 0 && ver !== null,
        exitCode,
        stderr: summary,
        ...(ver?.[1] ? { ipmiVersion: ver[1] } : {}),
        elapsedMs: Math.round(performance.now() - started),
      });
    };
    child.once('error', (err) => finish(null, ` ${err.message}`));
    child.once('close', (code, signal) => finish(code, signal ? ` killed by ${signal}` : ''));
  });
}
