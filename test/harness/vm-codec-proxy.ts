/**
 * Test harness: a man in the middle on the VM-codec link between qemu's
 * `ipmi-bmc-extern` chardev and ipmi_sim, to stop a credential change half-way
 * at an exact IPMI command:
 *
 *   guest /dev/ipmi0 → qemu ipmi-bmc-extern → 127.0.0.1:proxy.port → here → ipmi_sim's VM port
 *
 * Every request from qemu is traced (NetFn, command, and for user commands
 * the user ID and operation; never other data bytes: Set User Password
 * carries a password). Once a request matches `holdWhen`, it and every later
 * one is swallowed (not forwarded: the BMC never sees it) until
 * {@link VmCodecProxy.release}; qemu answers a swallowed request with a
 * timeout (0xC3) after its own 4 s. Control frames (version, capabilities,
 * attention) always pass, so the link itself stays up.
 */
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { VmFrameDecoder, VM_CMD_END, VM_MSG_END, vmEscape } from '../../ipmi-kcs/vm-codec.js';

export interface TracedRequest {
  /** Host ms since the proxy started. */
  t: number;
  seq: number;
  netFn: number;
  cmd: number;
  /** Byte 1 bits 5:0 of the user commands (§22.26-22.30). */
  userId?: number;
  /** §22.30 Set User Password operation (byte 2 bits 1:0): 0 disable, 1 enable, 2 set password, 3 test password. */
  passwordOp?: number;
  /** Forwarded to the BMC, or swallowed while holding. */
  forwarded: boolean;
  /** The BMC's completion code, once its response passed back. */
  completionCode?: number;
}

export interface VmCodecProxyOptions {
  /** ipmi_sim's VM-codec TCP port on 127.0.0.1. */
  upstreamPort: number;
  /** The first request this matches starts holding. */
  holdWhen: (req: Readonly<TracedRequest>) => boolean;
}

/** NetFn App (0x06) commands whose byte 1 holds a user ID. */
const USER_COMMANDS = new Set([0x43, 0x44, 0x45, 0x46, 0x47]);

export class VmCodecProxy {
  readonly trace: TracedRequest[] = [];
  #server: Server;
  #sockets = new Set<Socket>();
  #holding = false;
  #released = false;
  #onHeld: Array<(req: TracedRequest) => void> = [];
  #heldAt: TracedRequest | undefined;
  #t0 = performance.now();
  port = 0;

  private constructor(readonly opts: VmCodecProxyOptions) {
    this.#server = createServer((down) => this.#connect(down));
  }

  static async start(opts: VmCodecProxyOptions): Promise<VmCodecProxy> {
    const proxy = new VmCodecProxy(opts);
    await new Promise<void>((resolve, reject) => {
      proxy.#server.once('error', reject);
      proxy.#server.listen(0, '127.0.0.1', () => resolve());
    });
    proxy.port = (proxy.#server.address() as { port: number }).port;
    return proxy;
  }

  /** The request that started the hold, once one did. */
  get held(): TracedRequest | undefined {
    return this.#heldAt;
  }

  /** Resolves with the request that started the hold, or undefined after `timeoutMs`. */
  waitHeld(timeoutMs: number): Promise<TracedRequest | undefined> {
    if (this.#heldAt) return Promise.resolve(this.#heldAt);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(undefined), timeoutMs);
      this.#onHeld.push((req) => {
        clearTimeout(timer);
        resolve(req);
      });
    });
  }

  /** Stops holding: requests from now on reach the BMC (the swallowed ones never do). No new hold starts. */
  release(): void {
    this.#holding = false;
    this.#released = true;
  }

  async close(): Promise<void> {
    for (const s of this.#sockets) s.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #connect(down: Socket): void {
    const up = createConnection({ host: '127.0.0.1', port: this.opts.upstreamPort });
    this.#sockets.add(down);
    this.#sockets.add(up);
    const fromQemu = new VmFrameDecoder();
    const fromBmc = new VmFrameDecoder();
    /** Forwarded requests waiting for their response, by sequence number. */
    const pending = new Map<number, TracedRequest>();
    down.on('data', (chunk: Buffer) => {
      for (const frame of fromQemu.push(chunk)) {
        if (frame.type === 'overflow') continue;
        if (frame.type === 'control') {
          up.write(Buffer.concat([vmEscape(frame.bytes), Buffer.from([VM_CMD_END])]));
          continue;
        }
        const b = frame.bytes;
        const req: TracedRequest = { t: Math.round(performance.now() - this.#t0), seq: b[0] ?? 0, netFn: (b[1] ?? 0) >> 2, cmd: b[2] ?? 0, forwarded: false };
        if (req.netFn === 0x06 && USER_COMMANDS.has(req.cmd) && b.length > 4) {
          // seq, netFn/LUN, cmd, data…, checksum: data byte 1 is b[3] (b[4] for Set User Access, whose byte 1 is the channel).
          req.userId = (req.cmd === 0x43 || req.cmd === 0x44 ? b[4] ?? 0 : b[3] ?? 0) & 0x3f;
          if (req.cmd === 0x47 && b.length > 5) req.passwordOp = (b[4] ?? 0) & 0x03;
        }
        if (!this.#holding && !this.#released && this.opts.holdWhen(req)) {
          this.#holding = true;
          this.#heldAt = req;
          for (const f of this.#onHeld.splice(0)) f(req);
        }
        this.trace.push(req);
        if (this.#holding) continue;
        req.forwarded = true;
        pending.set(req.seq, req);
        up.write(Buffer.concat([vmEscape(b), Buffer.from([VM_MSG_END])]));
      }
    });
    up.on('data', (chunk: Buffer) => {
      // Responses pass unchanged; decoded only to note the completion code (seq, netFn/LUN, cmd, cc, …).
      for (const frame of fromBmc.push(chunk)) {
        if (frame.type !== 'message') continue;
        const req = pending.get(frame.bytes[0] ?? -1);
        if (req) {
          req.completionCode = frame.bytes[3];
          pending.delete(req.seq);
        }
      }
      down.write(chunk);
    });
    const close = (): void => {
      down.destroy();
      up.destroy();
      this.#sockets.delete(down);
      this.#sockets.delete(up);
    };
    down.on('close', close);
    up.on('close', close);
    down.on('error', close);
    up.on('error', close);
  }
}
