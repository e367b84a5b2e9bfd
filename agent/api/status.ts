/**
 * `GET /v1/status` without Koa: the document, and a plain node:http handler
 * that answers it exactly as the Koa app does (200, `Content-Type:
 * application/json`, the same bytes). The daemon's server answers every GET
 * and HEAD of status with this, in front of the Koa app (agent/startup.ts says
 * why); the app answers it the same way where it runs alone (tests).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { BackendInfo } from './ports.js';

/** The paths IPA answers with its status document (`ctx.path`, without the query). */
export function isStatusPath(path: string): boolean {
  return path === '/v1/status' || path === '/status' || path === '/v1/status/';
}

/** The path for the request log: query values masked except `wait` (a token in a query string is never logged). */
export function loggablePath(url: string): string {
  const q = url.indexOf('?');
  if (q < 0) return url;
  const parts = url.slice(q + 1).split('&').map((kv) => {
    const eq = kv.indexOf('=');
    const k = eq < 0 ? kv : kv.slice(0, eq);
    if (eq < 0) return k;
    return k === 'wait' ? kv : `${k}=***`;
  });
  return `${url.slice(0, q)}?${parts.join('&')}`;
}

/** The status body; it changes only when the backend is set, so it is serialized then, not per request. */
export class StatusDocument {
  private bytes: Buffer;

  constructor(private readonly version: string, private readonly startedAt = Date.now() / 1000, backend?: BackendInfo) {
    this.bytes = this.build(backend);
  }

  get body(): Buffer {
    return this.bytes;
  }

  setBackend(b: BackendInfo): void {
    this.bytes = this.build(b);
  }

  private build(b: BackendInfo | undefined): Buffer {
    return Buffer.from(JSON.stringify({
      started_at: this.startedAt,
      version: this.version,
      ...(b ? { backend: { kind: b.kind, reason: b.reason, ...(b.warning ? { warning: b.warning } : {}) } } : {}),
    }));
  }
}

/**
 * Answers `GET` of a status path and returns true, or returns false for
 * anything else. `onDone(path, ms)` writes the request-log line.
 */
export function answerStatus(req: IncomingMessage, res: ServerResponse, doc: StatusDocument, onDone: (url: string, ms: number) => void): boolean {
  // IPA's status route is GET (werkzeug adds HEAD); other methods get the app's 405.
  const head = req.method === 'HEAD';
  if (req.method !== 'GET' && !head) return false;
  const url = req.url ?? '/';
  const q = url.indexOf('?');
  if (!isStatusPath(q < 0 ? url : url.slice(0, q))) return false;
  const t0 = performance.now();
  const body = doc.body;
  res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': body.length });
  res.end(head ? undefined : body);
  onDone(url, performance.now() - t0);
  return true;
}
