/**
 * The Ironic calls discovery needs beyond a rotation's ({@link IronicApi}):
 * find a node by a port's MAC or by its BMC address, create a node with its
 * ports, and patch a node. Same rules as ironic-api.ts: Ironic's faultstring
 * in errors, never a request body (a node's driver_info holds a password).
 */
import type { Secret } from '../service/secret.js';
import { IronicApi, type FetchLike, type IronicNodeView } from './ironic-api.js';

/** 1.45: a PATCH of `driver` resets the hardware interfaces to the new type's defaults. */
export const ENROLL_API_VERSION = '1.45';

export interface NodeSummary {
  uuid: string;
  driver: string;
  provision_state: string;
  driver_info: Record<string, unknown>;
}

export interface NewNode {
  uuid: string;
  driver: string;
  driver_info: Record<string, string | number | Secret>;
  properties?: Record<string, unknown>;
}

export type PatchOp = { op: 'add' | 'replace' | 'remove'; path: string; value?: string | number | Secret };

/** What the discovery service asks of Ironic (IronicEnrollApi implements it over REST). */
export interface DiscoveryIronic {
  node(ident: string): Promise<IronicNodeView>;
  /** Node UUIDs whose ports carry one of `macs`. */
  nodesByMac(macs: readonly string[]): Promise<string[]>;
  /** Every node (uuid, driver, state, masked driver_info). */
  nodes(): Promise<NodeSummary[]>;
  createNode(node: NewNode, macs: readonly string[]): Promise<void>;
  /** `resetInterfaces`: with a change of driver, every interface goes back to the new type's default (API 1.45). */
  patchNode(ident: string, ops: readonly PatchOp[], opts?: { resetInterfaces?: boolean }): Promise<void>;
  provision(ident: string, target: string): Promise<void>;
  waitForProvision(ident: string, states: readonly string[], timeoutMs: number): Promise<IronicNodeView>;
  power(ident: string, target: string): Promise<void>;
  waitForPower(ident: string, timeoutMs: number): Promise<IronicNodeView>;
}

export interface IronicEnrollApiOptions {
  url: string;
  token?: Secret;
  fetch?: FetchLike;
  timeoutMs?: number;
  pollMs?: number;
}

export class IronicEnrollApi implements DiscoveryIronic {
  private readonly base: IronicApi;
  /** The same client at ENROLL_API_VERSION, for the calls only discovery makes. */
  private readonly enroll: IronicApi;

  constructor(opts: IronicEnrollApiOptions) {
    this.base = new IronicApi(opts);
    this.enroll = new IronicApi({ ...opts, apiVersion: ENROLL_API_VERSION });
  }

  private call(method: string, path: string, body: unknown, expect: number[], what: string): Promise<unknown> {
    return this.enroll.call(method, path, body, expect, what);
  }

  node(ident: string): Promise<IronicNodeView> {
    return this.base.node(ident);
  }

  provision(ident: string, target: string): Promise<void> {
    return this.base.provision(ident, target);
  }

  waitForProvision(ident: string, states: readonly string[], timeoutMs: number): Promise<IronicNodeView> {
    return this.base.waitForProvision(ident, states, timeoutMs);
  }

  power(ident: string, target: string): Promise<void> {
    return this.base.power(ident, target);
  }

  waitForPower(ident: string, timeoutMs: number): Promise<IronicNodeView> {
    return this.base.waitForPower(ident, timeoutMs);
  }

  async nodesByMac(macs: readonly string[]): Promise<string[]> {
    const found = new Set<string>();
    for (const mac of macs) {
      const r = (await this.call('GET', `/v1/ports?address=${encodeURIComponent(mac)}&fields=node_uuid`, undefined, [200], `look up port ${mac}`)) as { ports?: Array<{ node_uuid?: string }> };
      for (const p of r.ports ?? []) if (p.node_uuid) found.add(p.node_uuid);
    }
    return [...found];
  }

  async nodes(): Promise<NodeSummary[]> {
    const out: NodeSummary[] = [];
    let path: string | null = '/v1/nodes?fields=uuid,driver,provision_state,driver_info&limit=1000';
    while (path) {
      const r = (await this.call('GET', path, undefined, [200], 'list nodes')) as { nodes?: NodeSummary[]; next?: string };
      out.push(...(r.nodes ?? []));
      path = r.next && r.nodes?.length ? new URL(r.next).pathname + new URL(r.next).search : null;
    }
    return out;
  }

  async createNode(node: NewNode, macs: readonly string[]): Promise<void> {
    const body = { ...node, driver_info: reveal(node.driver_info) };
    await this.call('POST', '/v1/nodes', body, [201], `create node ${node.uuid}`);
    for (const address of macs) await this.call('POST', '/v1/ports', { address, node_uuid: node.uuid }, [201], `create port ${address} of node ${node.uuid}`);
  }

  async patchNode(ident: string, ops: readonly PatchOp[], opts: { resetInterfaces?: boolean } = {}): Promise<void> {
    const body = ops.map((o) => (o.value === undefined ? { op: o.op, path: o.path } : { op: o.op, path: o.path, value: typeof o.value === 'object' ? o.value.reveal() : o.value }));
    const what = `update ${ops.map((o) => o.path).join(', ')} of node ${ident}`;
    // 409: the conductor holds the node's lock (e.g. inspector's enroll hook is still at it).
    await this.enroll.retryLocked(() => this.call('PATCH', `/v1/nodes/${encodeURIComponent(ident)}${opts.resetInterfaces ? '?reset_interfaces=true' : ''}`, body, [200], what));
  }
}

function reveal(info: Record<string, string | number | Secret>): Record<string, string | number> {
  return Object.fromEntries(Object.entries(info).map(([k, v]) => [k, typeof v === 'object' ? v.reveal() : v]));
}
