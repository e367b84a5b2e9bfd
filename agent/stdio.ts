/**
 * Standard streams for the one-shot commands, without Node's stream objects
 * where a plain fd does the same. `process.stdout`, `stderr` and `stdin` on a
 * pipe or socket are built as net.Socket, which loads node:net, its stream
 * bases and diagnostics: 28 built-in modules, ~6 ms of a command on the host and
 * ~100 ms of `set-credentials` in the qemu guest (TCG), where ipmitool pays
 * nothing of the kind. A command writes a few lines and reads at most one, so on
 * a pipe, socket or regular file it writes with write(2) and reads with read(2).
 * A terminal (or any other character device) keeps Node's own stream, which
 * knows its width and raw mode.
 *
 * Writes to a pipe are synchronous either way: Node makes stdio pipes blocking
 * on Linux. The daemon keeps Node's streams (agent/cli.ts): under systemd its
 * stdout is journald's socket, where Node writes without blocking the loop.
 */
import { fstatSync, readSync, writeSync } from 'node:fs';

type StdFd = 0 | 1 | 2;

/** A pipe, a socket or a regular file: what read(2)/write(2) serve as well as a stream. */
function plainFd(fd: StdFd): boolean {
  try {
    const st = fstatSync(fd);
    return st.isFIFO() || st.isSocket() || st.isFile();
  } catch {
    return false;
  }
}

function processStream(fd: 1 | 2): NodeJS.WritableStream & { isTTY?: boolean } {
  return fd === 1 ? process.stdout : process.stderr;
}

/**
 * What a command writes its output and diagnostics through: `write(text)`, and
 * `fd` and `isTTY` for the log format and the journal check
 * (service/log-line.ts). A reader that went away (EPIPE: `… | head -1`) ends
 * the output quietly, as it does for other command-line tools.
 */
export class FdWriter {
  readonly isTTY = false;
  #stream: NodeJS.WritableStream | undefined;
  #gone = false;

  constructor(readonly fd: 1 | 2) {}

  write(chunk: string | Uint8Array): boolean {
    if (this.#gone) return true;
    if (this.#stream) return this.#stream.write(chunk);
    const bytes = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk;
    let off = 0;
    while (off < bytes.length) {
      try {
        off += writeSync(this.fd, bytes, off, bytes.length - off);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'EPIPE') {
          this.#gone = true;
          return true;
        }
        // O_NONBLOCK set by whoever shares the pipe, and the pipe is full: Node's
        // stream waits for room; the rest goes through it, in order.
        if (code === 'EAGAIN') {
          this.#stream = processStream(this.fd);
          return this.#stream.write(bytes.subarray(off));
        }
        throw err;
      }
    }
    return true;
  }
}

/** Standard output or error for a one-shot command: an FdWriter on a pipe, socket or file, else Node's stream. */
export function stdWriter(fd: 1 | 2): NodeJS.WritableStream & { isTTY?: boolean } {
  return plainFd(fd) ? (new FdWriter(fd) as unknown as NodeJS.WritableStream & { isTTY?: boolean }) : processStream(fd);
}

/** Longest first line read (a password is at most 20 bytes, §22.30; the contract names the limit). */
const MAX_LINE = 64 * 1024;

/**
 * The first line of stdin when it is a pipe or a regular file, read with
 * read(2) (the buffer wiped afterwards: it held the password); undefined when
 * stdin is a terminal or anything else, for the caller's stream path. Reads
 * whole chunks, so bytes after the first line are consumed: the one-shot
 * commands read nothing after it.
 */
export function readFirstLineSync(fd: StdFd = 0): string | undefined {
  if (!plainFd(fd)) return undefined;
  const buf = Buffer.alloc(4096);
  const parts: Buffer[] = [];
  let total = 0;
  try {
    for (;;) {
      let n: number;
      try {
        n = readSync(fd, buf, 0, buf.length, null);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'EAGAIN') {
          // A non-blocking pipe with nothing in it yet: wait a little, as a blocking read would.
          Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 5);
          continue;
        }
        throw err;
      }
      if (n === 0) break;
      const nl = buf.subarray(0, n).indexOf(0x0a);
      parts.push(Buffer.from(buf.subarray(0, nl >= 0 ? nl : n)));
      total += nl >= 0 ? nl : n;
      if (nl >= 0 || total > MAX_LINE) break;
    }
    const line = Buffer.concat(parts);
    const text = line.toString('utf8');
    line.fill(0);
    return text.endsWith('\r') ? text.slice(0, -1) : text;
  } finally {
    buf.fill(0);
    for (const p of parts) p.fill(0);
  }
}
