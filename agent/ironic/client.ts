/**
 * The conductor client's life: find the node (lookup, with discovery on 404), take
 * the agent token, then heartbeat until stopped. Runs in the background; stop()
 * cancels whatever it is doing.
 */
import type { Inventory } from '../inventory/types.js';
import { IronicApiClient } from './api-client.js';
import { atLeast, parseApiVersion, V_CONTINUE_INSPECTION } from './api-version.js';
import { runDiscovery } from './discovery.js';
import { Heartbeater, type HeartbeatStats } from './heartbeater.js';
import { lookupNode, type LookupResult } from './lookup.js';
import type {
  Clock, IronicClientConfig, IronicClientLogger, IronicTokens, DiscoveredCredentials, FetchLike, LookupConfig, LookupNode, RandomSource,
} from './types.js';

export interface IronicClientDeps {
  config: IronicClientConfig;
  logger: IronicClientLogger;
  tokens: IronicTokens;
  /** The callback URL sent in heartbeats, e.g. `https://10.0.0.5:9999`. */
  advertiseUrl(): string;
  /** The auto-TLS certificate PEM, sent as `agent_verify_ca` (API >= 1.68). */
  getVerifyCa(): string | undefined;
  collectInventory(): Promise<Inventory>;
  /** Applies BMC credentials a discovery answer carried; resolves with a secret-free result. */
  applyDiscoveredCredentials?(creds: DiscoveredCredentials): Promise<object>;
  /** Called once lookup has found the node (before the first heartbeat). */
  onNodeInfo?(node: LookupNode, config: LookupConfig): void;
  /** Called when the client gives up (lookup timeout, incompatible conductor, token lockdown). */
  onFatal?(err: Error): void;
  /** Node UUID known in advance (virtual-media parameters); sent with lookup. */
  nodeUuid?: string;
  agentVersion: string;
  fetch: FetchLike;
  clock: Clock;
  random: RandomSource;
}

export type IronicClientPhase = 'looking-up' | 'heartbeating' | 'stopped' | 'failed';

const MAC_RE = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;

/** MACs for lookup: every interface's, normalised, without all-zero ones (IPA ignores invalid MACs). */
export function lookupMacs(inventory: Pick<Inventory, 'interfaces'>): string[] {
  const out = new Set<string>();
  for (const i of inventory.interfaces ?? []) {
    const mac = String(i.mac_address ?? '').toLowerCase();
    if (MAC_RE.test(mac) && mac !== '00:00:00:00:00:00') out.add(mac);
  }
  return [...out];
}

export class IronicClient {
  private readonly d: IronicClientDeps;
  private readonly api: IronicApiClient;
  private readonly abort = new AbortController();
  private heartbeater: Heartbeater | undefined;
  private running: Promise<void> | undefined;
  private discovered = false;
  private uuid: string | undefined;
  private phaseNow: IronicClientPhase = 'looking-up';

  constructor(deps: IronicClientDeps) {
    this.d = deps;
    const urls = deps.config.api_url ?? [];
    if (urls.length === 0) throw new Error('the conductor client needs at least one api_url');
    const pinned = deps.config.ironic_api_version ? parseApiVersion(deps.config.ironic_api_version) : undefined;
    this.api = new IronicApiClient({
      urls,
      fetch: deps.fetch,
      logger: deps.logger,
      timeoutMs: (deps.config.http_request_timeout ?? 30) * 1000,
      requestId: deps.config.global_request_id,
      pinnedVersion: pinned,
    });
    this.uuid = deps.nodeUuid;
  }

  get nodeUuid(): string | undefined {
    return this.uuid;
  }

  get phase(): IronicClientPhase {
    return this.phaseNow;
  }

  get heartbeatStats(): HeartbeatStats | undefined {
    return this.heartbeater?.stats;
  }

  /** Starts looking the node up in the background; idempotent. */
  start(): void {
    if (this.d.config.insecure && !this.running) {
      this.d.logger.error('ipa-insecure: the TLS certificates of Ironic and of the inspection callback are NOT verified; ' +
        'anyone on the network path can impersonate them. BMC credentials offered by discovery will be refused.');
    }
    this.running ??= this.main().catch((err: unknown) => {
      if (this.abort.signal.aborted) {
        this.phaseNow = 'stopped';
        return;
      }
      this.phaseNow = 'failed';
      const e = err instanceof Error ? err : new Error(String(err));
      this.d.logger.error(`conductor client stopped: ${e.message}`);
      this.d.onFatal?.(e);
    });
  }

  forceHeartbeat(): void {
    this.heartbeater?.force();
  }

  async stop(): Promise<void> {
    this.abort.abort(new Error('conductor client stopped'));
    await this.running;
    this.phaseNow = 'stopped';
  }

  private async main(): Promise<void> {
    const signal = this.abort.signal;
    let inventory = await this.d.collectInventory();
    const macs = lookupMacs(inventory);
    if (macs.length === 0 && !this.uuid) throw new Error('no network interface with a MAC address to look the node up with');
    this.d.logger.info(`looking the node up with MACs ${macs.join(',')}${this.uuid ? ` and uuid ${this.uuid}` : ''}`);

    const found: LookupResult = await lookupNode({
      api: this.api,
      macs,
      nodeUuid: this.uuid,
      clock: this.d.clock,
      random: this.d.random,
      logger: this.d.logger,
      timeoutS: this.d.config.lookup_timeout ?? 600,
      intervalS: this.d.config.lookup_interval ?? 1,
      signal,
      onNotFound: async ({ baseUrl, serverMax }) => {
        if (this.discovered) return;
        const callbackUrl = this.d.config.inspection_callback_url ??
          (atLeast(serverMax, V_CONTINUE_INSPECTION) ? `${baseUrl}/v1/continue_inspection` : undefined);
        if (!callbackUrl) return;
        this.discovered = true;
        // Collected again: discovery may run minutes after start, and the BMC address may have changed.
        try {
          inventory = await this.d.collectInventory();
        } catch (err) {
          this.d.logger.warn(`collecting the inventory again failed (${err instanceof Error ? err.message : String(err)}); posting the one from start-up`);
        }
        await runDiscovery({
          api: this.api,
          callbackUrl,
          inventory: inventory as unknown as Record<string, unknown>,
          agentVersion: this.d.agentVersion,
          applyDiscoveredCredentials: this.d.applyDiscoveredCredentials?.bind(this.d),
          clock: this.d.clock,
          logger: this.d.logger,
          signal,
          insecure: this.d.config.insecure,
        });
      },
    });

    const verdict = this.d.tokens.applyLookup(found.agentToken);
    if (verdict === 'lockdown' || this.d.tokens.lockdownReason) {
      throw new Error(`agent locked down: ${this.d.tokens.lockdownReason ?? 'token refused'}`);
    }
    if (!this.d.tokens.hasToken) {
      throw new Error('lookup gave no usable agent token and none is configured; Ironic would refuse every heartbeat');
    }
    this.uuid = found.node.uuid;
    this.d.onNodeInfo?.(found.node, found.config);

    this.heartbeater = new Heartbeater({
      api: this.api,
      nodeUuid: found.node.uuid,
      tokens: this.d.tokens,
      advertiseUrl: this.d.advertiseUrl,
      getVerifyCa: this.d.getVerifyCa,
      agentVersion: this.d.agentVersion,
      heartbeatTimeoutS: found.heartbeatTimeoutS,
      clock: this.d.clock,
      random: this.d.random,
      logger: this.d.logger,
    });
    this.phaseNow = 'heartbeating';
    this.d.logger.info(`heartbeating to ${this.api.preferredUrl} for node ${found.node.uuid} as ${this.d.advertiseUrl()}`);
    await this.heartbeater.run(signal);
  }
}
