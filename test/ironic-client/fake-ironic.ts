/**
 * A scriptable stand-in for Ironic's ramdisk endpoints on 127.0.0.1 (port 0):
 * `GET /` (version document), `GET /v1/lookup`, `POST /v1/heartbeat/{node}`,
 * inspection callbacks. Responses are queued per route; every request is recorded.
 * Error bodies use Ironic's double-wrapped shape (parsable_error.py).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Recorded {
  method: string;
  path: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

export interface Reply {
  status: number;
  body?: unknown;
}

export type Route = 'root' | 'lookup' | 'heartbeat' | 'inspection';

/** Ironic's error body: a JSON string inside JSON. */
export function ironicError(faultstring: string, faultcode = 'Client'): { error_message: string } {
  return { error_message: JSON.stringify({ faultcode, faultstring, debuginfo: null }) };
}

export function rootDoc(max: string): object {
  const v = { id: 'v1', links: [], status: 'CURRENT', min_version: '1.1', version: max };
  return { name: 'OpenStack Ironic API', description: 'Ironic', default_version: v, versions: [v] };
}

export function lookupOk(uuid: string, token: string | null, heartbeatTimeout = 300): Reply {
  return {
    status: 200,
    body: {
      node: { uuid, properties: {}, instance_info: {}, driver_internal_info: { agent_secret_token: '******' } },
      config: { heartbeat_timeout: heartbeatTimeout, agent_token: token, agent_token_required: true, metrics: { backend: 'noop' } },
    },
  };
}

export class FakeIronic {
  readonly requests: Recorded[] = [];
  private readonly queues = new Map<Route, Reply[]>();
  private readonly defaults = new Map<Route, Reply>();
  private readonly waiters: Array<{ route: Route; count: number; resolve: () => void }> = [];
  private server: http.Server | undefined;
  url = '';

  constructor(maxVersion = '1.82') {
    this.defaults.set('root', { status: 200, body: rootDoc(maxVersion) });
    this.defaults.set('lookup', { status: 404, body: ironicError('Resource could not be found.') });
    this.defaults.set('heartbeat', { status: 202 });
    this.defaults.set('inspection', { status: 200, body: { uuid: 'discovered-node' } });
  }

  /** Queue replies for a route (used in order, then the default). */
  reply(route: Route, ...replies: Reply[]): this {
    this.queues.set(route, [...(this.queues.get(route) ?? []), ...replies]);
    return this;
  }

  setDefault(route: Route, reply: Reply): this {
    this.defaults.set(route, reply);
    return this;
  }

  of(route: Route): Recorded[] {
    return this.requests.filter((r) => routeOf(r.method, r.path) === route);
  }

  /** Resolves once `count` requests have hit `route`. */
  waitFor(route: Route, count: number): Promise<void> {
    if (this.of(route).length >= count) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ route, count, resolve }));
  }

  async start(): Promise<this> {
    this.server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const rec: Recorded = { method: req.method ?? '', path: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString('utf8') };
        this.requests.push(rec);
        const route = routeOf(rec.method, rec.path);
        const reply = (route && this.queues.get(route)?.shift()) ?? (route ? this.defaults.get(route) : undefined) ?? { status: 404, body: ironicError('no route') };
        const text = reply.body === undefined ? '' : JSON.stringify(reply.body);
        res.writeHead(reply.status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
        res.end(text);
        for (const w of [...this.waiters]) {
          if (w.route === route && this.of(route).length >= w.count) {
            this.waiters.splice(this.waiters.indexOf(w), 1);
            w.resolve();
          }
        }
      });
    });
    await new Promise<void>((r) => this.server!.listen(0, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  async stop(): Promise<void> {
    if (!this.server) return;
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server!.close(() => r()));
  }
}

function routeOf(method: string, path: string): Route | undefined {
  const p = path.split('?')[0]!;
  if (method === 'GET' && p === '/') return 'root';
  if (method === 'GET' && p === '/v1/lookup') return 'lookup';
  if (method === 'POST' && p.startsWith('/v1/heartbeat/')) return 'heartbeat';
  if (method === 'POST' && (p === '/v1/continue' || p === '/v1/continue_inspection')) return 'inspection';
  return undefined;
}

/** A loopback port with nothing listening (bound, then closed). */
export async function closedPort(): Promise<number> {
  const s = http.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}
