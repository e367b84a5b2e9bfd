/**
 * Guest side of the console protocol of test/harness/qemu.ts, for node
 * programs run inside the qemu guest (`chroot /host node …`):
 * `@@inband:result <json>` lines report results; `@@inband:ask <name>` asks the
 * host, which answers with one line on the console. /init switched the
 * console's echo off, so an answer (a password) is never echoed into the log.
 */
import { createInterface, type Interface } from 'node:readline';

export function report(result: Record<string, unknown>): void {
  process.stdout.write(`@@inband:result ${JSON.stringify(result)}\n`);
}

export class HostChannel {
  #rl: Interface;
  #lines: AsyncIterator<string>;

  constructor() {
    // terminal: false: readline must not echo or redraw what it reads.
    this.#rl = createInterface({ input: process.stdin, terminal: false });
    this.#lines = this.#rl[Symbol.asyncIterator]();
  }

  async ask(name: string): Promise<string> {
    if (!/^[\w:.-]+$/.test(name)) throw new Error(`ask: bad request name ${name}`);
    process.stdout.write(`@@inband:ask ${name}\n`);
    const next = await this.#lines.next();
    if (next.done) throw new Error(`ask ${name}: the console closed`);
    return next.value.replace(/\r$/, '');
  }

  close(): void {
    this.#rl.close();
    process.stdin.destroy();
  }
}
