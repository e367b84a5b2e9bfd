/**
 * Connection limits of the agent's HTTP(S) listener. Without them, 1,100 idle
 * sockets used up the process's file descriptors and even `/v1/status` was
 * reset; with no fd left, the engine cannot open /dev/ipmi0 or write its crash
 * journal either.
 *
 * - A cap on open connections, well below the fd limit (a quarter of it,
 *   16..512), so the descriptors the agent itself needs are always there.
 * - At the cap, a new connection is not refused while an idle one exists: the
 *   oldest idle connection is closed to make room (one that never sent a
 *   request first, then the longest-idle keep-alive one). Holding sockets open
 *   therefore cannot shut Ironic out; only connections with a request in
 *   progress are never evicted, and past the cap with all of them busy the new
 *   one is closed.
 * - A connection that has not completed a request within `firstRequestMs`
 *   (idle or dribbling its headers) is closed; after a response, Node's
 *   keep-alive timeout applies; a request body must arrive within
 *   `requestTimeoutMs` (Node's requestTimeout). A response Ironic waits for
 *   (`?wait=true`) is not a request in progress for those timeouts.
 *
 * Works on the raw TCP socket for https too: connections are keyed by the
 * peer's address and port, which the TLS socket of a request shares.
 */
import { readFileSync } from 'node:fs';
import type { Server } from 'node:http';
import type { Socket } from 'node:net';

export interface ConnectionLimits {
  maxConnections: number;
  /** From accept to the end of the first request's headers. */
  firstRequestMs: number;
  /** Node's requestTimeout: the whole request (headers and body). */
  requestTimeoutMs: number;
  /** Node's headersTimeout (must not exceed requestTimeout). */
  headersTimeoutMs: number;
}

/** The soft RLIMIT_NOFILE of this process, from /proc/self/limits (null when unreadable). */
export function openFileLimit(read: () => string = () => readFileSync('/proc/self/limits', 'utf8')): number | null {
  try {
    const m = /^Max open files\s+(\d+|unlimited)/m.exec(read());
    if (!m) return null;
    return m[1] === 'unlimited' ? Number.MAX_SAFE_INTEGER : Number(m[1]);
  } catch {
    return null;
  }
}

export function defaultConnectionLimits(fdLimit: number | null = openFileLimit()): ConnectionLimits {
  const max = Math.max(16, Math.min(512, Math.floor((fdLimit ?? 1024) / 4)));
  return { maxConnections: max, firstRequestMs: 20_000, requestTimeoutMs: 60_000, headersTimeoutMs: 20_000 };
}

interface Conn {
  socket: Socket;
  /** Requests whose handling has not finished. */
  busy: number;
  /** A request was completed on it (a keep-alive connection Ironic may reuse). */
  used: boolean;
  since: number;
}

export interface ConnectionGuard {
  readonly open: number;
  /** Idle connections closed to admit a new one. */
  readonly evicted: number;
  /** New connections closed because every open one was busy. */
  readonly refused: number;
  /** Connections closed for sending no complete request in time. */
  readonly timedOut: number;
  stop(): void;
}

export function guardConnections(server: Server, limits: ConnectionLimits, warn: (line: string) => void = () => undefined, now: () => number = Date.now): ConnectionGuard {
  server.requestTimeout = limits.requestTimeoutMs;
  server.headersTimeout = Math.min(limits.headersTimeoutMs, limits.requestTimeoutMs);
  const conns = new Map<string, Conn>();
  const keyOf = (s: { remoteAddress?: string | undefined; remotePort?: number | undefined }): string => `${s.remoteAddress}|${s.remotePort}`;
  const stats = { evicted: 0, refused: 0, timedOut: 0 };
  let warned = 0;
  const note = (line: string): void => {
    // A flood must not become a log flood: the first few, then every thousandth.
    if (warned++ < 5 || warned % 1000 === 0) warn(`${line} (${warned} so far)`);
  };

  const oldestIdle = (): [string, Conn] | undefined => {
    let fresh: [string, Conn] | undefined;
    let reused: [string, Conn] | undefined;
    for (const e of conns) {
      if (e[1].busy > 0) continue;
      if (!e[1].used) {
        fresh ??= e; // Map order is accept order: the first is the oldest
      } else if (!reused || e[1].since < reused[1].since) reused = e;
    }
    return fresh ?? reused;
  };

  server.on('connection', (socket: Socket) => {
    const key = keyOf(socket);
    if (conns.size >= limits.maxConnections) {
      const victim = oldestIdle();
      if (victim) {
        conns.delete(victim[0]);
        victim[1].socket.destroy();
        stats.evicted++;
        note(`http: ${limits.maxConnections} connections open; closed the oldest idle one to admit ${socket.remoteAddress}`);
      } else {
        stats.refused++;
        note(`http: ${limits.maxConnections} connections open, all with a request in progress; closed a new one from ${socket.remoteAddress}`);
        socket.destroy();
        return;
      }
    }
    const conn: Conn = { socket, busy: 0, used: false, since: now() };
    conns.set(key, conn);
    socket.once('close', () => {
      if (conns.get(key) === conn) conns.delete(key);
    });
  });

  server.on('request', (req, res) => {
    const conn = conns.get(keyOf(req.socket));
    if (!conn) return;
    conn.busy++;
    let done = false;
    const end = (): void => {
      if (done) return;
      done = true;
      conn.busy--;
      conn.used = true;
      conn.since = now();
    };
    res.once('finish', end);
    res.once('close', end);
  });

  // Connections that never got a request through: idle after accept, or slow headers.
  const sweep = setInterval(() => {
    const limit = now() - limits.firstRequestMs;
    for (const [key, c] of conns) {
      if (c.busy === 0 && !c.used && c.since < limit) {
        conns.delete(key);
        c.socket.destroy();
        stats.timedOut++;
      }
    }
  }, Math.max(50, Math.min(1000, Math.floor(limits.firstRequestMs / 4))));
  sweep.unref();
  server.once('close', () => clearInterval(sweep));

  return {
    get open() {
      return conns.size;
    },
    get evicted() {
      return stats.evicted;
    },
    get refused() {
      return stats.refused;
    },
    get timedOut() {
      return stats.timedOut;
    },
    stop: () => clearInterval(sweep),
  };
}
