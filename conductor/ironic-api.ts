/**
 * The few Ironic REST calls a rotation needs, over fetch: read a node, move
 * its provision state (retrying while the conductor holds the node's lock, as
 * Ironic's own clients do), change its power state, patch driver_info, and
 * wait for a state. Errors carry Ironic's unwrapped `faultstring`, never a
 * request body (a PATCH of driver_info holds a password).
 */
import type { Secret } from '../service/secret.js';

/** Manual cleaning needs ≥ 1.15; 1.31 is old enough for every Ironic still supported. */
export const IRONIC_API_VERSION = '1.31';

export interface IronicNodeView {
  uuid: string;
  name: string | null;
  provision_state: string;
  target_provision_state: string | null;
  power_state: string | null;
  target_power_state: string | null;
  last_error: string | null;
  maintenance: boolean;
  driver: string;
  driver_info: Record<string, unknown>;
  [k: string]: unknown;
}

export class IronicApiError extends Error {
  constructor(message: string, readonly status?: number) {
    super(message);
    this.name = 'IronicApiError';
  }
}

export type FetchLike = (url: string, init: RequestInit) => Promise<Response>;

export interface IronicApiOptions {
  url: string;
  /** Keystone token, sent as X-Auth-Token (omit for noauth Ironic). */
  token?: Secret;
  fetch?: FetchLike;
  timeoutMs?: number;
  /** Poll interval of the wait helpers, default 1000 ms. */
  pollMs?: number;
  sleep?: (ms: number) => Promise<void>;
  /** X-OpenStack-Ironic-API-Version of every call (default IRONIC_API_VERSION). */
  apiVersion?: string;
}

export class IronicApi {
  readonly url: string;
  private readonly fetchFn: FetchLike;
  private readonly pollMs: number;
  private readonly sleep: (ms: number) => Promise<void>;

  constructor(private readonly opts: IronicApiOptions) {
    this.url = opts.url.replace(/\/+$/, '');
    this.fetchFn = opts.fetch ?? ((u, i) => fetch(u, i));
    this.pollMs = opts.pollMs ?? 1000;
    this.sleep = opts.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms)));
  }

  async node(ident: string): Promise<IronicNodeView> {
    return (await this.call('GET', `/v1/nodes/${encodeURIComponent(ident)}`, undefined, [200], `read node ${ident}`)) as IronicNodeView;
  }

  /** PUT …/states/provision; retries 409 (node locked) for up to ~60 s. */
  async provision(ident: string, target: string, extra: Record<string, unknown> = {}): Promise<void> {
    await this.retryLocked(() => this.call('PUT', `/v1/nodes/${encodeURIComponent(ident)}/states/provision`, { target, ...extra }, [202], `move node ${ident} to ${target}`));
  }

  /** PUT …/states/power; retries 409 like provision. */
  async power(ident: string, target: string): Promise<void> {
    await this.retryLocked(() => this.call('PUT', `/v1/nodes/${encodeURIComponent(ident)}/states/power`, { target }, [202], `set power ${target} on node ${ident}`));
  }

  /** DELETE …/maintenance: takes the node out of maintenance; retries 409 like provision. */
  async clearMaintenance(ident: string): Promise<void> {
    await this.retryLocked(() => this.call('DELETE', `/v1/nodes/${encodeURIComponent(ident)}/maintenance`, undefined, [202], `take node ${ident} out of maintenance`));
  }

  /** Replaces driver_info keys (JSON patch `add` replaces an existing member). */
  async patchDriverInfo(ident: string, values: Record<string, string | Secret>): Promise<void> {
    const ops = Object.entries(values).map(([k, v]) => ({ op: 'add', path: `/driver_info/${k}`, value: typeof v === 'string' ? v : v.reveal() }));
    await this.retryLocked(() => this.call('PATCH', `/v1/nodes/${encodeURIComponent(ident)}`, ops, [200], `update driver_info (${Object.keys(values).join(', ')}) of node ${ident}`));
  }

  /** Polls until the provision state is one of `states` with no transition pending. */
  async waitForProvision(ident: string, states: readonly string[], timeoutMs: number): Promise<IronicNodeView> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const n = await this.node(ident);
      if (states.includes(n.provision_state) && (!n.target_provision_state || n.provision_state.endsWith('failed'))) return n;
      if (Date.now() > deadline) {
        throw new IronicApiError(`node ${ident} still "${n.provision_state}" (target ${n.target_provision_state}) after ${Math.round(timeoutMs / 1000)} s waiting for ${states.join(' or ')}`);
      }
      await this.sleep(this.pollMs);
    }
  }

  /** Polls until no power transition is pending. */
  async waitForPower(ident: string, timeoutMs: number): Promise<IronicNodeView> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const n = await this.node(ident);
      if (!n.target_power_state) return n;
      if (Date.now() > deadline) throw new IronicApiError(`node ${ident} still changing power to ${n.target_power_state} after ${Math.round(timeoutMs / 1000)} s`);
      await this.sleep(this.pollMs);
    }
  }

  /** Runs `fn` again while Ironic answers 409 (the conductor holds the node's lock), for up to ~60 polls. */
  async retryLocked(fn: () => Promise<unknown>): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await fn();
        return;
      } catch (err) {
        if (!(err instanceof IronicApiError) || err.status !== 409 || attempt >= 60) throw err;
        await this.sleep(this.pollMs);
      }
    }
  }

  /** One REST call; a status outside `expect` throws IronicApiError with Ironic's unwrapped faultstring (never the body sent). */
  async call(method: string, path: string, body: unknown, expect: number[], what: string): Promise<unknown> {
    const headers: Record<string, string> = { 'X-OpenStack-Ironic-API-Version': this.opts.apiVersion ?? IRONIC_API_VERSION, Accept: 'application/json' };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    if (this.opts.token) headers['X-Auth-Token'] = this.opts.token.reveal();
    let r: Response;
    try {
      r = await this.fetchFn(`${this.url}${path}`, {
        method, headers, signal: AbortSignal.timeout(this.opts.timeoutMs ?? 30_000),
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      });
    } catch (err) {
      const cause = (err as { cause?: { code?: string } }).cause?.code ?? (err as Error).name;
      throw new IronicApiError(`Ironic at ${this.url} did not answer (${what}): ${cause}`);
    }
    const text = await r.text();
    if (!expect.includes(r.status)) throw new IronicApiError(`Ironic refused to ${what}: ${r.status} ${unwrapIronicError(text)}`, r.status);
    return text ? JSON.parse(text) : null;
  }
}

/** Ironic wraps its fault as a JSON string inside `error_message`. */
export function unwrapIronicError(text: string): string {
  try {
    const outer = JSON.parse(text) as { error_message?: unknown };
    let inner = outer.error_message;
    if (typeof inner === 'string') {
      try {
        inner = JSON.parse(inner);
      } catch {
        return (inner as string).slice(0, 400);
      }
    }
    const fault = (inner as { faultstring?: string } | undefined)?.faultstring;
    if (fault) return fault.slice(0, 400);
  } catch {
    // not JSON
  }
  return text.replace(/\s+/g, ' ').trim().slice(0, 400) || '(empty body)';
}
