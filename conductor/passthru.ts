/**
 * Scenario 2 over HTTP, shaped like an Ironic vendor passthru call:
 *
 *   POST /v1/nodes/{node}/vendor_passthru?method=set_bmc_credentials   (body: {} or kwargs)
 *     → 202 {"rotation": "<id>", "node": "<node>", "status": "running", "href": "/v1/rotations/<id>"}
 *       (async, as Ironic's async passthru methods answer 202)
 *   GET /v1/rotations/{id}
 *     → 200 {"status": "running"} | {"status": "done", "record": RotationRecord}
 *   GET /v1/nodes/{node}/vendor_passthru/methods
 *     → 200 {"set_bmc_credentials": {async, http_methods, description, ...}} (Ironic's discovery shape)
 *
 * A plain node:http request listener (no framework), so the conductor's own
 * HTTP service can mount it. Every request must carry the configured token in
 * X-Auth-Token (compared in constant time) unless the handler is built with
 * `noauth` (loopback tests). One rotation per node at a time (409 otherwise).
 * Responses never hold a password: the record has none.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Secret } from '../service/secret.js';
import type { RotationRecord } from './rotate.js';
import { NODE_IDENT } from './secret-store.js';

export const PASSTHRU_METHOD = 'set_bmc_credentials';

export interface PassthruOptions {
  /** Runs one rotation of `node` (rotate() with the service's Ironic, store and prover). */
  rotate: (node: string) => Promise<RotationRecord>;
  /** Required in X-Auth-Token; omit only with `noauth: true`. */
  token?: Secret;
  noauth?: boolean;
  /** Finished rotations kept for GET, default 1000. */
  keep?: number;
  log?: (line: string) => void;
}

type Rotation = { node: string; status: 'running' } | { node: string; status: 'done'; record: RotationRecord };

export function createPassthruHandler(opts: PassthruOptions): (req: IncomingMessage, res: ServerResponse) => void {
  if (!opts.noauth && !opts.token) throw new Error('the passthru handler needs a token (or noauth for tests)');
  const rotations = new Map<string, Rotation>();
  const running = new Set<string>();
  const keep = opts.keep ?? 1000;
  const log = opts.log ?? (() => undefined);

  const send = (res: ServerResponse, status: number, body: unknown): void => {
    const text = JSON.stringify(body);
    res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
    res.end(text);
  };
  // Ironic's error shape, so Ironic clients unwrap it the same way.
  const fail = (res: ServerResponse, status: number, msg: string): void =>
    send(res, status, { error_message: JSON.stringify({ faultstring: msg, faultcode: status >= 500 ? 'Server' : 'Client', debuginfo: null }) });

  const authorised = (req: IncomingMessage): boolean => {
    if (opts.noauth) return true;
    const given = req.headers['x-auth-token'];
    if (typeof given !== 'string' || !given) return false;
    const g = Secret.fromString(given);
    try {
      return g.equals(opts.token as Secret);
    } finally {
      g.dispose();
    }
  };

  return (req, res) => {
    // Drain any body (kwargs are accepted but not needed: the service's settings decide the users).
    req.resume();
    const url = new URL(req.url ?? '/', 'http://conductor');
    if (!authorised(req)) return fail(res, 401, 'authentication required (X-Auth-Token)');
    const passthru = /^\/v1\/nodes\/([^/]+)\/vendor_passthru(\/methods)?$/.exec(url.pathname);
    if (passthru) {
      const node = decodeURIComponent(passthru[1] as string);
      if (!NODE_IDENT.test(node)) return fail(res, 400, 'invalid node ident');
      if (passthru[2]) {
        if (req.method !== 'GET') return fail(res, 405, 'method not allowed');
        return send(res, 200, {
          [PASSTHRU_METHOD]: {
            async: true, attach: false, http_methods: ['POST'], require_exclusive_lock: true,
            description: 'Rotate the BMC credential: generate, store pending, set in-band by the agent in a manual clean, prove over lanplus, update driver_info, mark current, retire the previous user.',
          },
        });
      }
      if (req.method !== 'POST') return fail(res, 405, 'method not allowed');
      const method = url.searchParams.get('method');
      if (method !== PASSTHRU_METHOD) return fail(res, 400, `unknown vendor passthru method ${JSON.stringify(method)}; supported: ${PASSTHRU_METHOD}`);
      if (running.has(node)) return fail(res, 409, `a rotation of node ${node} is already running`);
      const id = randomUUID();
      running.add(node);
      rotations.set(id, { node, status: 'running' });
      log(`passthru: rotation ${id} of node ${node} started`);
      opts.rotate(node).then(
        (record) => rotations.set(id, { node, status: 'done', record }),
        (err: unknown) => rotations.set(id, { node, status: 'done', record: crashed(node, err) }),
      ).finally(() => {
        running.delete(node);
        const r = rotations.get(id);
        log(`passthru: rotation ${id} of node ${node} ${r && r.status === 'done' ? r.record.outcome : 'ended'}`);
        while (rotations.size > keep) {
          const oldest = [...rotations.entries()].find(([, v]) => v.status === 'done');
          if (!oldest) break;
          rotations.delete(oldest[0]);
        }
      });
      return send(res, 202, { rotation: id, node, status: 'running', href: `/v1/rotations/${id}` });
    }
    const status = /^\/v1\/rotations\/([0-9a-f-]{36})$/.exec(url.pathname);
    if (status) {
      if (req.method !== 'GET') return fail(res, 405, 'method not allowed');
      const r = rotations.get(status[1] as string);
      if (!r) return fail(res, 404, 'no such rotation');
      return send(res, 200, r.status === 'running' ? { rotation: status[1], node: r.node, status: 'running' } : { rotation: status[1], node: r.node, status: 'done', record: r.record });
    }
    return fail(res, 404, 'not found');
  };
}

/** rotate() records its own failures; this covers a throw from outside it. */
function crashed(node: string, err: unknown): RotationRecord {
  const at = new Date().toISOString();
  return {
    node, nodeUuid: null, startedAt: at, finishedAt: at, outcome: 'failed', failedStep: null,
    error: `rotation crashed: ${(err as Error)?.message ?? String(err)}`, warnings: [],
    initial: { provisionState: null, powerState: null, username: null },
    next: { username: null, secretId: null, secretState: null, store: 'unknown' },
    applied: [], rolledBack: [], current: { username: null, note: 'unknown: read the node in Ironic' }, steps: [],
  };
}
