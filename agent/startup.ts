/**
 * The daemon's start-up measures, in one place: V8's heap sizing and
 * optimizing compiler while it starts ({@link startupV8}), and a server that
 * listens, and answers `GET /v1/status`, before the Koa app is loaded
 * ({@link startupFront}). Everything else about start-up is the build step's
 * (scripts/bundle.mjs).
 *
 * ## V8
 *
 * Measured with the bundle, VmRSS of the idle daemon (bench/daemon.ts,
 * "VmRSS idle"; bare node:http 45.2 MiB): 59.5 MiB with V8's defaults,
 * 54.0 MiB with the two settings below (each alone gives back less than
 * half of that):
 * - the young generation stays at the size it starts with (1 MiB
 *   semi-spaces). V8 otherwise doubles it, up to 16 MiB semi-spaces that are
 *   never given back, whenever allocation is brisk: module loading at start,
 *   any burst of requests. A request's garbage fits 1 MiB many times over,
 *   so scavenges stay short and requests/s are unchanged;
 * - TurboFan is off while the daemon loads and back on once it serves:
 *   start-up code runs once, optimizing it is wasted work, and the optimized
 *   code and the compiler's zone memory stayed resident.
 * These are node command-line flags (`--semi-space-growth-factor=1`,
 * `--no-opt`), which neither the unit nor `node bin/inband-agent.js` pass;
 * V8 reads both when it next needs them, so setting them before loading works.
 *
 * ## Status first
 *
 * Why: Ironic (and systemd, and the bench) take the first status answer as
 * "the agent is up". Loading Koa, its mime tables, the router and the
 * command registry costs ~30 ms of CPU after everything else is bundled
 * (measured with the bundle: exec → first answer 145 ms of main-thread CPU
 * with the app loaded first vs 106 ms answering status first, bare node:http
 * 75 ms; bench/daemon.ts, "exec → API answering"), which alone would put the
 * daemon over its target of 1.2× a bare node:http server.
 *
 * The app (and the engine beside it) start loading {@link LOAD_AFTER_LISTEN_MS}
 * after the server listens, or at once when a request needs them: loading
 * takes the main thread for those ~30 ms, and a status poll arriving
 * meanwhile would wait behind it. Started at once, the first answer came no sooner than with the
 * app loaded first (bench, exec → API answering: 1.6× bare node:http, vs
 * 1.45× with the delay).
 *
 * And after: `GET /v1/status` (and HEAD) is always answered here, in front
 * of the app, from the same {@link StatusDocument} the app would serve, with
 * the same request-log line; every other request, other methods on the status
 * paths included (405), goes to the app once {@link StartupFront.ready} has
 * it, and waits for it before. Ironic polls status on every heartbeat cycle,
 * and Koa's per-request context costs a third of a status answer: with every
 * status through Koa the daemon answered 6,770 req/s on one connection
 * against IPA 9.4.1's 4,734 in the same run (1.43x, below the 2x target);
 * bench/daemon.ts measures it.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { setFlagsFromString } from 'node:v8';
import { answerStatus, loggablePath, type StatusDocument } from './api/status.js';
import type { Log } from './logger.js';

/**
 * Applies the V8 settings above for a daemon about to load, and returns the
 * function that turns the optimizing compiler back on (call it once the
 * daemon serves). Flags the operator gave node (NODE_OPTIONS included) win.
 */
export function startupV8(execArgv: readonly string[] = process.execArgv, nodeOptions = process.env.NODE_OPTIONS ?? ''): () => void {
  const given = [...execArgv, ...nodeOptions.split(/\s+/)];
  if (!given.some((a) => /^--(semi-space-growth-factor|max-semi-space-size)\b/.test(a))) setFlagsFromString('--semi-space-growth-factor=1');
  if (given.some((a) => /^--(no-)?(opt|turbofan|jitless)\b/.test(a))) return () => undefined;
  setFlagsFromString('--no-opt');
  let resumed = false;
  return () => {
    if (resumed) return;
    resumed = true;
    setFlagsFromString('--opt');
  };
}

type Handler = (req: IncomingMessage, res: ServerResponse) => unknown;

/** How long after listening the app starts loading, unless a request needs it sooner. */
export const LOAD_AFTER_LISTEN_MS = 40;

export interface StartupFront {
  /** The server's request listener. */
  handle: (req: IncomingMessage, res: ServerResponse) => void;
  /** Resolves when the app should start loading: {@link LOAD_AFTER_LISTEN_MS} after `listening()`, or at the first request that needs it. */
  readonly loadNow: Promise<void>;
  /** The server listens: the countdown to loading the app starts. */
  listening(): void;
  /** From now on every request goes to `app`. */
  ready(app: Handler): void;
  /** The app could not be loaded: requests waiting for it are answered 503. */
  failed(): void;
  /** Requests received so far (agent/memory.ts tells an idle daemon by it). */
  readonly received: number;
}

export function startupFront(status: StatusDocument, reqLog: Log): StartupFront {
  let app: Handler | null = null;
  let waiting: { req: IncomingMessage; res: ServerResponse }[] | null = [];
  let startLoading!: () => void;
  const loadNow = new Promise<void>((r) => (startLoading = r));
  const logStatus = (u: string, ms: number) => reqLog.info(`GET ${loggablePath(u)} 200 ${ms.toFixed(1)}ms`);
  let received = 0;
  return {
    loadNow,
    get received() {
      return received;
    },
    listening: () => {
      setTimeout(startLoading, LOAD_AFTER_LISTEN_MS).unref();
    },
    handle: (req, res) => {
      received++;
      if (answerStatus(req, res, status, logStatus)) return;
      if (app) {
        void app(req, res);
        return;
      }
      if (waiting) {
        waiting.push({ req, res });
        startLoading();
      } else {
        res.statusCode = 503;
        res.end();
      }
    },
    ready: (h) => {
      app = h;
      const queued = waiting ?? [];
      waiting = null;
      for (const { req, res } of queued) void h(req, res);
    },
    failed: () => {
      const queued = waiting ?? [];
      waiting = null;
      for (const { res } of queued) {
        res.statusCode = 503;
        res.end();
      }
    },
  };
}
