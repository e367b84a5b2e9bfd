/**
 * The secret store on OpenStack Barbican (key-manager API v1), over REST:
 *
 * - each password is one `passphrase` secret (`text/plain` payload) named
 *   `inband-bmc:<node>`; its state lives in the secret's user metadata
 *   (`node`, `username`, `state`, `createdat`, `updatedat`, `note` — Barbican
 *   wants lower-case keys), so the history of a node is
 *   `GET /v1/secrets?name=inband-bmc:<node>` plus one metadata read per entry,
 *   and nothing about the node is kept outside Barbican;
 * - the value is read back with `GET /v1/secrets/{id}/payload`
 *   (`Accept: text/plain`), never with the deprecated non-JSON Accept on the
 *   secret itself;
 * - superseded and failed secrets are deleted (`DELETE /v1/secrets/{id}`).
 *
 * Authentication: a Keystone token (`X-Auth-Token`), or, for deployments
 * running the unauthenticated-context pipeline, `X-Project-Id` (+ `X-Roles`).
 * Barbican's error bodies (`{"code", "title", "description"}`, or text/plain
 * from the context middleware) are unwrapped into SecretStoreError messages;
 * no request body (which holds the password) is ever part of one.
 */
import { Secret } from '../service/secret.js';
import { checkNode, deletable, SecretStoreError, transition, type SecretEntry, type SecretState, type SecretStore } from './secret-store.js';

const NAME_PREFIX = 'inband-bmc:';
const STATES: readonly SecretState[] = ['pending', 'current', 'superseded', 'failed'];

export type FetchLike = (url: string, init: RequestInit) => Promise<Response>;

export interface BarbicanAuth {
  /** Keystone token; sent as X-Auth-Token. */
  token?: Secret;
  /** Project for unauthenticated-context deployments; sent as X-Project-Id. */
  projectId?: string;
  /** X-Roles for unauthenticated-context deployments (Barbican defaults to admin). */
  roles?: string;
}

export interface BarbicanSecretStoreOptions {
  /** Base URL, e.g. http://127.0.0.1:9311 (with or without /v1). */
  url: string;
  auth: BarbicanAuth;
  fetch?: FetchLike;
  /** Per-request timeout, default 15 s. */
  timeoutMs?: number;
  now?: () => Date;
}

interface Listed {
  secret_ref: string;
  name: string | null;
  created: string;
}

export class BarbicanSecretStore implements SecretStore {
  readonly kind = 'barbican' as const;
  private readonly base: string;
  private readonly fetchFn: FetchLike;
  private readonly timeoutMs: number;
  private readonly now: () => Date;

  constructor(private readonly opts: BarbicanSecretStoreOptions) {
    if (!opts.auth.token && !opts.auth.projectId) throw new SecretStoreError('BAD_REQUEST', 'Barbican needs a Keystone token or a project id');
    this.base = opts.url.replace(/\/+$/, '').replace(/\/v1$/, '');
    this.fetchFn = opts.fetch ?? ((u, i) => fetch(u, i));
    this.timeoutMs = opts.timeoutMs ?? 15_000;
    this.now = opts.now ?? (() => new Date());
  }

  async putPending(node: string, username: string, secret: Secret): Promise<SecretEntry> {
    checkNode(node);
    if (!username) throw new SecretStoreError('BAD_REQUEST', 'username is required');
    const at = this.now().toISOString();
    const created = await this.call('POST', '/v1/secrets', {
      json: { name: NAME_PREFIX + node, payload: secret.reveal(), payload_content_type: 'text/plain', secret_type: 'passphrase' },
      expect: [201],
      what: `store a secret for node ${node}`,
    });
    const id = idOf(String((created.json as { secret_ref?: string }).secret_ref ?? ''));
    const entry: SecretEntry = { id, node, username, state: 'pending', createdAt: at, updatedAt: at };
    try {
      await this.writeMeta(entry);
    } catch (err) {
      // A secret without its metadata would be an entry of unknown state: take it back.
      await this.call('DELETE', `/v1/secrets/${id}`, { expect: [204, 404], what: 'delete an incomplete secret' }).catch(() => undefined);
      throw err;
    }
    return entry;
  }

  markCurrent(node: string, id: string): Promise<SecretEntry> {
    return this.change(node, id, 'current');
  }

  markFailed(node: string, id: string, note: string): Promise<SecretEntry> {
    return this.change(node, id, 'failed', note);
  }

  async getCurrent(node: string): Promise<{ entry: SecretEntry; secret: Secret } | null> {
    const entries = await this.history(node);
    // Newest current wins: markCurrent writes the new current before superseding the old one.
    const cur = entries.filter((e) => e.state === 'current').pop();
    if (!cur) return null;
    return { entry: cur, secret: await this.payload(cur.id) };
  }

  async getSecret(node: string, id: string): Promise<Secret> {
    checkNode(node);
    const meta = await this.readMeta(id);
    if (meta.node !== node) throw new SecretStoreError('NOT_FOUND', `no secret entry ${id} for node ${node}`);
    return this.payload(id);
  }

  async history(node: string): Promise<SecretEntry[]> {
    checkNode(node);
    const listed: Listed[] = [];
    for (let offset = 0; ; ) {
      const q = new URLSearchParams({ name: NAME_PREFIX + node, limit: '100', offset: String(offset), sort: 'created:asc' });
      const r = await this.call('GET', `/v1/secrets?${q}`, { expect: [200], what: `list secrets of node ${node}` });
      const page = (r.json as { secrets?: Listed[]; total?: number }).secrets ?? [];
      listed.push(...page);
      offset += page.length;
      if (!page.length || offset >= ((r.json as { total?: number }).total ?? 0)) break;
    }
    const entries: SecretEntry[] = [];
    for (const s of listed) {
      const id = idOf(s.secret_ref);
      let meta: Record<string, string>;
      try {
        meta = await this.readMeta(id);
      } catch (err) {
        if (err instanceof SecretStoreError && err.code === 'NOT_FOUND') continue; // deleted meanwhile
        throw err;
      }
      if (meta.node !== node || !STATES.includes(meta.state as SecretState)) continue; // not ours
      entries.push({
        id, node, username: meta.username ?? '', state: meta.state as SecretState,
        createdAt: meta.createdat ?? s.created, updatedAt: meta.updatedat ?? s.created,
        ...(meta.note ? { note: meta.note } : {}),
      });
    }
    return entries.sort((a, b) => (a.createdAt < b.createdAt ? -1 : a.createdAt > b.createdAt ? 1 : 0));
  }

  async removeEntry(node: string, id: string): Promise<void> {
    checkNode(node);
    const meta = await this.readMeta(id);
    if (meta.node !== node) throw new SecretStoreError('NOT_FOUND', `no secret entry ${id} for node ${node}`);
    if (meta.state === 'current') throw new SecretStoreError('INVALID_STATE', `entry ${id} is current; it is not removed`);
    await this.call('DELETE', `/v1/secrets/${id}`, { expect: [204, 404], what: `delete secret ${id}` });
  }

  async deleteSuperseded(node: string, opts: { keep?: number } = {}): Promise<number> {
    const gone = deletable(await this.history(node), opts.keep);
    for (const e of gone) await this.call('DELETE', `/v1/secrets/${e.id}`, { expect: [204, 404], what: `delete secret ${e.id}` });
    return gone.length;
  }

  private async change(node: string, id: string, to: 'current' | 'failed', note?: string): Promise<SecretEntry> {
    const before = await this.history(node);
    const after = transition(before, id, to, this.now().toISOString(), note);
    const target = after.find((e) => e.id === id) as SecretEntry;
    // The target first: a failure in between leaves two "current" entries, and readers take the newest.
    await this.writeMeta(target);
    for (const e of after) {
      const old = before.find((b) => b.id === e.id);
      if (e.id !== id && old && old.state !== e.state) await this.writeMeta(e);
    }
    return target;
  }

  private async payload(id: string): Promise<Secret> {
    const r = await this.call('GET', `/v1/secrets/${id}/payload`, { expect: [200], accept: 'text/plain', raw: true, what: `read secret ${id}` });
    const s = Secret.fromBuffer(r.raw as Buffer);
    (r.raw as Buffer).fill(0);
    return s;
  }

  private async readMeta(id: string): Promise<Record<string, string>> {
    const r = await this.call('GET', `/v1/secrets/${id}/metadata`, { expect: [200], what: `read metadata of secret ${id}` });
    return ((r.json as { metadata?: Record<string, string> }).metadata ?? {});
  }

  private async writeMeta(e: SecretEntry): Promise<void> {
    const metadata: Record<string, string> = {
      node: e.node, username: e.username, state: e.state, createdat: e.createdAt, updatedat: e.updatedAt,
      ...(e.note ? { note: e.note.slice(0, 255) } : {}),
    };
    await this.call('PUT', `/v1/secrets/${e.id}/metadata`, { json: { metadata }, expect: [200, 201], what: `record state ${e.state} of secret ${e.id}` });
  }

  private headers(extra: Record<string, string>): Record<string, string> {
    const h: Record<string, string> = { ...extra };
    const { token, projectId, roles } = this.opts.auth;
    if (token) h['X-Auth-Token'] = token.reveal();
    if (projectId) h['X-Project-Id'] = projectId;
    if (roles) h['X-Roles'] = roles;
    return h;
  }

  private async call(method: string, path: string, o: { json?: unknown; expect: number[]; accept?: string; raw?: boolean; what: string }): Promise<{ status: number; json?: unknown; raw?: Buffer }> {
    const headers = this.headers({ Accept: o.accept ?? 'application/json', ...(o.json !== undefined ? { 'Content-Type': 'application/json' } : {}) });
    let r: Response;
    try {
      r = await this.fetchFn(`${this.base}${path}`, {
        method, headers, signal: AbortSignal.timeout(this.timeoutMs),
        ...(o.json !== undefined ? { body: JSON.stringify(o.json) } : {}),
      });
    } catch (err) {
      const cause = (err as { cause?: { code?: string } }).cause?.code ?? (err as Error).name;
      throw new SecretStoreError('UNAVAILABLE', `Barbican at ${this.base} did not answer (${o.what}): ${cause}`);
    }
    const body = Buffer.from(await r.arrayBuffer());
    if (!o.expect.includes(r.status)) {
      const reason = unwrapError(body, r.headers.get('content-type'));
      body.fill(0);
      const code = r.status === 404 ? 'NOT_FOUND' : r.status === 401 || r.status === 403 ? 'DENIED' : r.status >= 500 ? 'UNAVAILABLE' : 'BAD_REQUEST';
      throw new SecretStoreError(code, `Barbican refused to ${o.what}: ${r.status} ${reason}`, r.status);
    }
    if (o.raw) return { status: r.status, raw: body };
    const text = body.toString('utf8');
    return { status: r.status, json: text ? JSON.parse(text) : null };
  }
}

function idOf(ref: string): string {
  const id = ref.replace(/\/+$/, '').split('/').pop() ?? '';
  if (!/^[0-9a-f-]{36}$/i.test(id)) throw new SecretStoreError('BAD_REQUEST', `unexpected secret_ref ${JSON.stringify(ref.slice(0, 120))}`);
  return id;
}

/** `{"code", "title", "description"}` → description; an HTML error page → its last text line; text → its first line. */
export function unwrapError(body: Buffer, contentType: string | null): string {
  const text = body.toString('utf8').trim();
  if (/json/i.test(contentType ?? '') || text.startsWith('{')) {
    try {
      const j = JSON.parse(text) as { description?: string; title?: string; error?: { message?: string } };
      const msg = j.description || j.error?.message || j.title;
      if (msg) return String(msg).slice(0, 300);
    } catch {
      // fall through to text
    }
  }
  // webob's HTML error page (e.g. the context middleware's "Missing X-Project-Id") puts the detail last.
  const html = /html/i.test(contentType ?? '') || text.startsWith('<');
  const lines = text.replace(/<br\s*\/?>/gi, '\n').split('\n').map((l) => l.replace(/<[^>]+>/g, '').trim()).filter(Boolean);
  return ((html ? lines.pop() : lines[0]) ?? '').slice(0, 300) || '(empty body)';
}
