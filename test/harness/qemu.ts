/**
 * Test harness: a qemu guest with a real Linux IPMI driver stack
 * (ipmi_msghandler → ipmi_devintf → ipmi_si) behind a real `/dev/ipmi0`,
 * whose KCS interface is wired to an `ipmi_sim` the test started:
 *
 *   guest ioctl → ipmi_si (KCS, io 0xca2) → qemu isa-ipmi-kcs → ipmi-bmc-extern
 *     → TCP 127.0.0.1:vmPort (VM serial codec) → ipmi_sim → RMCP+ for the host's proof
 *
 * The kernel is Debian's (scripts/fetch-kernel.sh, cached under .cache/), the
 * initramfs busybox (scripts/build-initramfs.sh, cached by content). The guest
 * mounts the host's `/` read-only over 9p at /host, so host binaries (node,
 * the compiled project) run inside it with `chroot /host …`, and a writable
 * share at /share (`/run/inband-share` inside the chroot) for results.
 * With `forward`, the guest also gets qemu's user network (10.0.2.15, nothing
 * reachable but the forwarded host-loopback ports), for the agent's API.
 * With `systemd`, /init boots the host's systemd as PID 1 instead, on an
 * overlayfs root (tmpfs upper over the read-only host root), to run units as
 * a node runs them; the units speak the same console protocol.
 *
 * Acceleration is TCG: on these machines /dev/kvm exists but hangs or aborts.
 *
 * Host and guest talk over the serial console, one line per message:
 * - `@@inband:<event> …` lines from /init (userspace, ipmi-ready, hostroot, exit);
 * - `@@inband:ask <name>` from the guest: the host answers with one line on the
 *   console's input (see {@link GuestOptions.onAsk}). The guest has echo off,
 *   so an answer (a password, say) never appears in the console log;
 * - `@@inband:result <json>` lines are collected into {@link GuestResult.results}.
 * test/qemu/guest/protocol.ts is the guest-side helper for node programs.
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { accessSync, constants as fsConstants, existsSync, readFileSync, statSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { testLogDir } from '../helpers/secrets.js';
import { sh } from './e2e.js';

export const QEMU_PATH = '/usr/bin/qemu-system-x86_64';
export const BUSYBOX_PATH = '/bin/busybox';
const MARK = '@@inband:';

/** The project root (holds package.json), from source (test/harness) or compiled (dist/test/harness) location. */
export const PROJECT_ROOT: string = (() => {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg) && /"name":\s*"inband-agent"/.test(readFileSync(pkg, 'utf8'))) return dir;
    dir = dirname(dir);
  }
  return resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
})();

export function cacheDir(): string {
  return process.env.INBAND_CACHE_DIR || join(PROJECT_ROOT, '.cache');
}

/** A kernel tree and initramfs ready to boot, with what preparing them cost. */
export interface GuestImage {
  kernelDir: string;
  vmlinuz: string;
  initrd: string;
  /** Debian package, version and kernel release, e.g. `linux-image-6.1.0-56-amd64`, `6.1.192-2`, `6.1.0-56-amd64`. */
  kernel: { package: string; version: string; release: string };
  timings: {
    /** scripts/fetch-kernel.sh wall time (apt-cache resolution; plus download and pruning when not cached). */
    fetchKernelMs: number;
    /** True when this call downloaded the kernel package. */
    downloaded: boolean;
    /** scripts/build-initramfs.sh wall time, 0 when the cached initramfs was used. */
    buildInitrdMs: number;
    initrdBytes: number;
  };
}

export interface Availability {
  available: boolean;
  /** Why not, and what enables it (for a visible skip). */
  reason: string;
}

/** Whether qemu and busybox-static are installed; the kernel is checked by {@link prepareGuestImage}. */
export function qemuAvailability(): Availability {
  const need: Array<[string, string]> = [
    [QEMU_PATH, 'Debian package qemu-system-x86'],
    [BUSYBOX_PATH, 'Debian package busybox-static'],
  ];
  for (const [path, pkg] of need) {
    try {
      accessSync(path, fsConstants.X_OK);
    } catch {
      return { available: false, reason: `${path} not installed (${pkg}; scripts/setup.sh --test installs it)` };
    }
  }
  return { available: true, reason: '' };
}

function run(cmd: string, args: string[], timeoutMs: number): Promise<{ code: number | null; stdout: string; stderr: string; ms: number }> {
  const started = performance.now();
  return new Promise((resolveRun) => {
    execFile(cmd, args, { timeout: timeoutMs, maxBuffer: 4 << 20 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : null) : 0;
      resolveRun({ code, stdout: String(stdout), stderr: String(stderr) + (err && code === null ? err.message : ''), ms: Math.round(performance.now() - started) });
    });
  });
}

let imagePromise: Promise<GuestImage> | undefined;

/**
 * Fetches (or reuses) the Debian kernel and builds (or reuses) the initramfs.
 * Memoised per process. Rejects with a message that names what is missing.
 */
export function prepareGuestImage(): Promise<GuestImage> {
  imagePromise ??= doPrepare();
  // A failed preparation may succeed later (network back): do not memoise failures.
  imagePromise.catch(() => { imagePromise = undefined; });
  return imagePromise;
}

async function doPrepare(): Promise<GuestImage> {
  const fetched = await run(join(PROJECT_ROOT, 'scripts', 'fetch-kernel.sh'), [], 300_000);
  const kernelDir = fetched.stdout.trim().split('\n').pop() ?? '';
  if (fetched.code !== 0 || !kernelDir || !existsSync(join(kernelDir, '.complete'))) {
    throw new Error(`no guest kernel: scripts/fetch-kernel.sh exited ${fetched.code}: ${fetched.stderr.trim().split('\n').slice(-3).join(' | ')}`);
  }
  const [pkg = '', version = '', release = ''] = readFileSync(join(kernelDir, '.kernel'), 'utf8').split('\n');
  const vmlinuz = join(kernelDir, 'boot', `vmlinuz-${release}`);

  // The initramfs depends only on the builder, the kernel and busybox: cache it by their identity.
  const builder = join(PROJECT_ROOT, 'scripts', 'build-initramfs.sh');
  const bb = statSync(BUSYBOX_PATH);
  const key = createHash('sha256')
    .update(readFileSync(builder)).update(basename(kernelDir)).update(readFileSync(join(kernelDir, '.complete')))
    .update(`${bb.size}:${bb.mtimeMs}`)
    .digest('hex').slice(0, 16);
  const initrdDir = join(cacheDir(), 'qemu', 'initrd');
  await mkdir(initrdDir, { recursive: true });
  const initrd = join(initrdDir, `${release}-${key}.cpio.gz`);
  let buildInitrdMs = 0;
  if (!existsSync(initrd)) {
    const built = await run(builder, [kernelDir, initrd], 120_000);
    if (built.code !== 0) throw new Error(`scripts/build-initramfs.sh failed (${built.code}): ${built.stderr.trim()}`);
    buildInitrdMs = built.ms;
    // Initramfs images of earlier builder versions are dead weight now.
    for (const f of await readdir(initrdDir)) {
      if (f.startsWith(`${release}-`) && f.endsWith('.cpio.gz') && join(initrdDir, f) !== initrd) await rm(join(initrdDir, f), { force: true });
    }
  }
  return {
    kernelDir, vmlinuz, initrd,
    kernel: { package: pkg, version, release },
    timings: { fetchKernelMs: fetched.ms, downloaded: /downloading/.test(fetched.stderr), buildInitrdMs, initrdBytes: statSync(initrd).size },
  };
}

export interface GuestOptions {
  /** TCP port of the ipmi_sim VM-codec socket on 127.0.0.1. Start the sim first: ipmi_si probes once at load. */
  vmPort: number;
  /** busybox sh script run in the initramfs (with /host and /share mounted). Its exit status is the guest's. */
  script?: string;
  /** Instead of `script`: argv run inside the host root (`chroot /host`), in `cwd`, with `env`. */
  command?: string[];
  /** Working directory inside the host root for `command` (default: the project root). */
  cwd?: string;
  /** Environment for `command` (never secrets: the guest script text holds them; use onAsk). */
  env?: Record<string, string>;
  /** Mount the host's / read-only at /host (default true). */
  hostRoot?: boolean;
  /** Writable host directory mounted at /share (and /run/inband-share in the chroot). Default: a temp dir, removed afterwards. */
  shareDir?: string;
  /** Kill qemu after this long (default 180000 ms). */
  timeoutMs?: number;
  memoryMb?: number;
  /**
   * Host loopback ports forwarded to guest TCP ports (qemu user networking,
   * `restrict=on`: the guest reaches nothing but these). The guest is 10.0.2.15;
   * forwarded connections come from 10.0.2.2, so the guest sees a remote client.
   */
  forward?: Array<{ hostPort: number; guestPort: number }>;
  /** Virtual CPUs (default $INBAND_QEMU_SMP or 1). */
  cpus?: number;
  /** Answers `@@inband:ask <name>` from the guest: one line, no control characters. */
  onAsk?: (name: string) => string | Promise<string>;
  /** Called for every console line (without the trailing CR). */
  onLine?: (line: string, elapsedMs: number) => void;
  /** Names the console log file. */
  name?: string;
  /** Default: {@link prepareGuestImage}(). */
  image?: GuestImage;
  /**
   * Boot systemd as PID 1 instead of running `script` to the end: the root is an
   * overlayfs (tmpfs upper over the read-only host root), and `script` runs first
   * in the initramfs with that root at `$SYSROOT`, to install units there; then
   * /init execs /lib/systemd/systemd, which starts `unit` (`systemd.unit=`). The
   * units print `@@inband:exit <status>` and power off. Needs the host root.
   */
  systemd?: {
    unit: string;
    /** Units masked on the kernel command line (`systemd.mask=`): what the test does not need to boot. */
    mask?: readonly string[];
  };
}

export interface GuestResult {
  /** Exit status of the guest script (from the `@@inband:exit` line); null if the guest never reported one. */
  exitCode: number | null;
  timedOut: boolean;
  /** qemu's own exit. */
  qemu: { code: number | null; signal: string | null };
  /** The whole serial console. */
  log: string;
  /** Where the console log was written: $INBAND_TEST_ARTIFACTS/logs/qemu-<name>.log, else .cache/qemu/logs/<name>.log. */
  logFile: string;
  /** Whether /dev/ipmi0 appeared in the guest. */
  ipmiReady: boolean;
  /** The guest kernel's IPMI lines (`dmesg | grep -i ipmi`). */
  dmesgIpmi: string[];
  /** Parsed `@@inband:result <json>` lines, in order. */
  results: unknown[];
  /** Host clock, ms since qemu was spawned; guest uptimes in seconds from the guest's own clock. */
  timings: {
    userspaceMs?: number;
    ipmiReadyMs?: number;
    hostRootMs?: number;
    /** /init execs systemd (GuestOptions.systemd). */
    systemdMs?: number;
    netMs?: number;
    exitMs?: number;
    totalMs: number;
    guestUptimeAtIpmiReady?: number;
    guestUptimeAtExit?: number;
  };
  image: GuestImage;
}

const live = new Set<ChildProcess>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // A crashed test must not leave a VM behind.
  process.once('exit', () => {
    for (const child of live) {
      try {
        child.kill('SIGKILL');
      } catch {
        // gone
      }
    }
  });
}


/** Where the writable share appears inside the host-root chroot. */
export const CHROOT_SHARE = '/run/inband-share';

/**
 * One line of guest shell that runs `argv` inside the host root (`chroot /host`)
 * in `cwd` (default: the project root) with a clean environment plus `env`.
 * For composing `script`s that run several host programs in one boot.
 */
export function chrootCommand(argv: readonly string[], opts: { cwd?: string; env?: Record<string, string> } = {}): string {
  if (!argv.length) throw new Error('chrootCommand: empty argv');
  // NO_COLOR: the console is a tty, and colour codes make the log unreadable.
  const env = { PATH: '/usr/local/bin:/usr/bin:/bin', HOME: '/tmp', LANG: 'C.UTF-8', NO_COLOR: '1', ...opts.env };
  const envArgs = Object.entries(env).map(([k, v]) => {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) throw new Error(`chrootCommand: bad environment name ${k}`);
    return sh(`${k}=${v}`);
  });
  return `chroot /host /usr/bin/env -i ${envArgs.join(' ')} /bin/sh -c 'cd "$1" && shift && exec "$@"' sh ${sh(opts.cwd ?? PROJECT_ROOT)} ${argv.map(sh).join(' ')}`;
}

function commandScript(opts: GuestOptions): string {
  const argv = opts.command ?? [];
  if (!argv.length) throw new Error('bootGuest: give `script` or a non-empty `command`');
  if (opts.hostRoot === false) throw new Error('bootGuest: `command` runs in the host root; it needs hostRoot');
  return `cd /\nexec ${chrootCommand(argv, { cwd: opts.cwd, env: opts.env })}\n`;
}

function checkAnswer(answer: unknown): string {
  if (typeof answer !== 'string') throw new Error('onAsk must return a string');
  // One line on a canonical-mode tty: a newline ends it, other control characters edit it.
  // eslint-disable-next-line no-control-regex
  if (/[\x00-\x1f\x7f]/.test(answer)) throw new Error('onAsk answers must not contain control characters');
  if (answer.length > 1000) throw new Error('onAsk answers must be shorter than 1000 characters');
  return answer;
}

/**
 * Boots the guest, runs the script or command to completion (the guest powers
 * off), and returns its exit status, console and timings. Never rejects for a
 * guest failure: a hung guest is killed after `timeoutMs` and reported with
 * `timedOut`. Rejects only when the image cannot be prepared or qemu cannot start.
 */
export async function bootGuest(opts: GuestOptions): Promise<GuestResult> {
  if (!Number.isInteger(opts.vmPort) || opts.vmPort <= 0 || opts.vmPort > 65535) throw new Error('bootGuest: vmPort must be a TCP port');
  const script = opts.script ?? commandScript(opts);
  const image = opts.image ?? await prepareGuestImage();
  const hostRoot = opts.hostRoot ?? true;
  const forward = opts.forward ?? [];
  const unitName = /^[A-Za-z0-9@_.:-]+$/;
  if (opts.systemd) {
    if (!hostRoot) throw new Error('bootGuest: systemd boots the host root; it needs hostRoot');
    for (const u of [opts.systemd.unit, ...(opts.systemd.mask ?? [])]) if (!unitName.test(u)) throw new Error(`bootGuest: bad unit name ${u}`);
  }
  const systemdArgs = opts.systemd
    ? ` inband.systemd systemd.unit=${opts.systemd.unit} systemd.show_status=0${(opts.systemd.mask ?? []).map((u) => ` systemd.mask=${u}`).join('')}`
    : '';
  // The guest mounts fresh tmpfs on the host root's /tmp and /run; a project
  // checked out below them (CI's clones may be) is mounted again on top.
  const projectHidden = hostRoot && /^\/(tmp|run)(\/|$)/.test(PROJECT_ROOT);
  for (const f of forward) {
    if (![f.hostPort, f.guestPort].every((p) => Number.isInteger(p) && p > 0 && p < 65536)) throw new Error('bootGuest: forward ports must be TCP ports');
  }
  const ownShare = !opts.shareDir;
  const shareDir = opts.shareDir ?? await mkdtemp(join(tmpdir(), 'inband-guest-share-'));
  const name = (opts.name ?? 'guest').replace(/[^A-Za-z0-9_.-]/g, '_');
  const logDir = testLogDir();
  const logFile = logDir ? join(logDir, `qemu-${name}.log`) : join(cacheDir(), 'qemu', 'logs', `${name}.log`);
  installExitHook();

  try {
    await mkdir(dirname(logFile), { recursive: true });
    await mkdir(join(shareDir, '.inband'), { recursive: true, mode: 0o700 });
    await writeFile(join(shareDir, '.inband', 'guest.sh'), script, { mode: 0o700 });

    const append = `console=ttyS0 quiet panic=-1 inband.share${hostRoot ? ' inband.hostroot' : ''}${forward.length ? ' inband.net' : ''}${projectHidden ? ` inband.project=${PROJECT_ROOT}` : ''}${systemdArgs}`;
    // x86's COMMAND_LINE_SIZE: the kernel cuts a longer one silently (a lost systemd.mask= would only slow the boot).
    if (append.length >= 2048) throw new Error(`bootGuest: the kernel command line is ${append.length} bytes, over the kernel's 2047`);
    const args = [
      '-machine', `pc,accel=${process.env.INBAND_QEMU_ACCEL || 'tcg'}`,
      '-m', String(opts.memoryMb ?? 768),
      '-smp', String(opts.cpus ?? (Number(process.env.INBAND_QEMU_SMP) || 1)),
      '-nodefaults', '-no-user-config', '-display', 'none', '-no-reboot',
      ...(forward.length
        ? ['-nic', `user,model=virtio-net-pci,restrict=on,${forward.map((f) => `hostfwd=tcp:127.0.0.1:${f.hostPort}-10.0.2.15:${f.guestPort}`).join(',')}`]
        : ['-net', 'none']),
      // Console on stdio without qemu's monitor multiplexer: a stray ^A must not reach a monitor.
      '-chardev', 'stdio,id=console,signal=off', '-serial', 'chardev:console',
      '-kernel', image.vmlinuz, '-initrd', image.initrd,
      '-append', append,
      '-virtfs', `local,path=${shareDir},mount_tag=share,security_model=none,multidevs=remap`,
      ...(hostRoot ? ['-virtfs', 'local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap'] : []),
      ...(projectHidden ? ['-virtfs', `local,path=${PROJECT_ROOT},mount_tag=project,security_model=none,readonly=on,multidevs=remap`] : []),
      // §9 KCS system interface at the ISA default io 0xca2, announced through ACPI/SMBIOS so ipmi_si finds it.
      '-chardev', `socket,id=ipmi0,host=127.0.0.1,port=${opts.vmPort},reconnect=10`,
      '-device', 'ipmi-bmc-extern,id=bmc0,chardev=ipmi0',
      '-device', 'isa-ipmi-kcs,bmc=bmc0',
    ];
    const started = performance.now();
    const child = spawn(QEMU_PATH, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    live.add(child);
    const since = (): number => Math.round(performance.now() - started);

    const timings: GuestResult['timings'] = { totalMs: 0 };
    const dmesgIpmi: string[] = [];
    const results: unknown[] = [];
    let exitCode: number | null = null;
    let ipmiReady = false;
    let log = '';
    let pending = '';
    let timedOut = false;
    const stderrChunks: string[] = [];
    /** The console with the host time each line arrived, for the log file. */
    const stamped: string[] = [];

    const answer = async (askName: string): Promise<void> => {
      let reply = '';
      try {
        reply = checkAnswer(opts.onAsk ? await opts.onAsk(askName) : '');
      } catch (err) {
        stamped.push(`[host] cannot answer "${askName}": ${err instanceof Error ? err.message : String(err)}`);
      }
      if (child.stdin.writable) child.stdin.write(`${reply}\n`);
    };

    const onLine = (line: string): void => {
      const t = since();
      stamped.push(`[${String(t).padStart(6)} ms] ${line}`);
      opts.onLine?.(line, t);
      if (line.startsWith('dmesg: ')) dmesgIpmi.push(line.slice(7));
      const at = line.indexOf(MARK);
      if (at < 0) return;
      const [event = '', ...rest] = line.slice(at + MARK.length).split(' ');
      const arg = rest.join(' ');
      switch (event) {
        case 'userspace': timings.userspaceMs = t; break;
        case 'ipmi-ready':
          ipmiReady = true;
          timings.ipmiReadyMs = t;
          timings.guestUptimeAtIpmiReady = Number(rest[0]);
          break;
        case 'hostroot': timings.hostRootMs = t; break;
        case 'systemd': timings.systemdMs = t; break;
        case 'net': timings.netMs = t; break;
        case 'exit':
          exitCode = Number(rest[0]);
          timings.exitMs = t;
          timings.guestUptimeAtExit = Number(rest[1]);
          break;
        case 'ask': void answer(arg.trim()); break;
        case 'result':
          try {
            results.push(JSON.parse(arg));
          } catch {
            results.push({ unparsed: arg });
          }
          break;
        default: break;
      }
    };

    // Decode as a stream: a UTF-8 character may be split across chunks.
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (text: string) => {
      log += text;
      pending += text;
      let nl: number;
      while ((nl = pending.indexOf('\n')) >= 0) {
        onLine(pending.slice(0, nl).replace(/\r/g, ''));
        pending = pending.slice(nl + 1);
      }
    });
    child.stderr.on('data', (d: Buffer) => stderrChunks.push(d.toString('utf8')));
    child.stdin.on('error', () => { /* qemu gone; its exit is reported */ });

    const timeoutMs = opts.timeoutMs ?? 180_000;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);

    const qemu = await new Promise<GuestResult['qemu']>((resolveExit, rejectExit) => {
      child.once('error', (err) => rejectExit(new Error(`cannot start ${QEMU_PATH}: ${err.message}`)));
      child.once('close', (code, signal) => resolveExit({ code, signal }));
    }).finally(() => {
      clearTimeout(timer);
      live.delete(child);
    });
    if (pending) onLine(pending.replace(/\r/g, ''));
    timings.totalMs = since();
    const notes: string[] = [];
    const stderr = stderrChunks.join('').trim();
    if (stderr) notes.push(`[qemu stderr] ${stderr}`);
    if (timedOut) notes.push(`[host] guest killed after ${timeoutMs} ms`);
    notes.push(`[host] qemu exited code=${qemu.code} signal=${qemu.signal}; timings ${JSON.stringify(timings)}`);
    log += `\n${notes.join('\n')}\n`;
    await writeFile(logFile, [`# ${QEMU_PATH} ${args.join(' ')}`, ...stamped, ...notes, ''].join('\n'));
    return { exitCode, timedOut, qemu, log, logFile, ipmiReady, dmesgIpmi, results, timings, image };
  } finally {
    if (ownShare) await rm(shareDir, { recursive: true, force: true });
  }
}
