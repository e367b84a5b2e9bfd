/**
 * The daemon's one start-up measure: its server listens, and answers
 * `GET /v1/status`, before the Koa app is loaded.
 *
 * Why: Ironic (and systemd, and the bench) take the first status answer as
 * "the agent is up". Loading Koa, its mime tables, the router and the
 * command registry costs ~30 ms of CPU after everything else is bundled
 * (measured with the bundle: exec → first answer 145 ms of main-thread CPU
 * with the app loaded first vs 116 ms answering status first, bare node:http
 * 76 ms; bench/daemon.ts, "exec → API answering"), which alone would put the
 * daemon over its target of 1.2× a bare node:http server.
 *
 * Only until the app is there: {@link StartupFront.ready} hands every later
 * request, status included, to the app, so there is one status path once
 * started. A request other than status that arrives first waits for the app.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { answerStatus, loggablePath, type StatusDocument } from './api/status.js';
import type { Log } from './logger.js';

type Handler = (req: IncomingMessage, res: ServerResponse) => unknown;

export interface StartupFront {
  /** The server's request listener. */
  handle: (req: IncomingMessage, res: ServerResponse) => void;
  /** From now on every request goes to `app`. */
  ready(app: Handler): void;
  /** The app could not be loaded: requests waiting for it are answered 503. */
  failed(): void;
}

export function startupFront(status: StatusDocument, reqLog: Log): StartupFront {
  let app: Handler | null = null;
  let waiting: { req: IncomingMessage; res: ServerResponse }[] | null = [];
  const logStatus = (u: string, ms: number) => reqLog.info(`GET ${loggablePath(u)} 200 ${ms.toFixed(1)}ms`);
  return {
    handle: (req, res) => {
      if (app) {
        void app(req, res);
        return;
      }
      if (answerStatus(req, res, status, logStatus)) return;
      if (waiting) waiting.push({ req, res });
      else {
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
