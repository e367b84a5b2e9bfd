/**
 * Heartbeats: `POST /v1/heartbeat/{node}` with {callback_url, agent_version, agent_token,
 * agent_verify_ca} at min(server, 1.68), expecting 202 (research: ipa.md §2.4–2.5).
 * The first one goes out at once; then every heartbeat_timeout × U(0.3, 0.6), or
 * 5–10 s after an error. `force()` (an async command ended) brings the next one
 * forward, but never closer than 5 s to the previous one.
 */
import type { IronicApiClient } from './api-client.js';
import { atLeast, V_AGENT_VERIFY_CA } from './api-version.js';
import { FORCED_HEARTBEAT_MIN_GAP_S, heartbeatErrorIntervalSeconds, heartbeatIntervalSeconds } from './backoff.js';
import { unwrapIronicError } from './ironic-error.js';
import type { Clock, IronicClientLogger, IronicTokens, RandomSource } from './types.js';

export interface HeartbeaterOptions {
  api: IronicApiClient;
  nodeUuid: string;
  tokens: IronicTokens;
  advertiseUrl(): string;
  getVerifyCa(): string | undefined;
  agentVersion: string;
  heartbeatTimeoutS: number;
  clock: Clock;
  random: RandomSource;
  logger: IronicClientLogger;
}

export interface HeartbeatStats {
  sent: number;
  accepted: number;
  failed: number;
  forced: number;
}

export class Heartbeater {
  private readonly o: HeartbeaterOptions;
  private forced = false;
  private wake: (() => void) | undefined;
  private lastSentAt: number | undefined;
  private lastError = '';
  readonly stats: HeartbeatStats = { sent: 0, accepted: 0, failed: 0, forced: 0 };

  constructor(o: HeartbeaterOptions) {
    this.o = o;
  }

  /** Ask for a heartbeat soon (rate-limited to one per 5 s). */
  force(): void {
    this.forced = true;
    this.wake?.();
  }

  /** Heartbeats until `signal` aborts (then rejects with its reason). */
  async run(signal: AbortSignal): Promise<void> {
    let nextAt = this.o.clock.now();
    for (;;) {
      signal.throwIfAborted();
      const now = this.o.clock.now();
      let dueAt = nextAt;
      if (this.forced) {
        const earliest = this.lastSentAt === undefined ? now : this.lastSentAt + FORCED_HEARTBEAT_MIN_GAP_S * 1000;
        dueAt = Math.min(dueAt, Math.max(now, earliest));
      }
      if (now < dueAt) {
        await this.sleepUnlessWoken(dueAt - now, signal);
        continue;
      }
      if (this.forced) this.stats.forced++;
      this.forced = false;
      const ok = await this.beat(signal);
      const intervalS = ok ? heartbeatIntervalSeconds(this.o.heartbeatTimeoutS, this.o.random) : heartbeatErrorIntervalSeconds(this.o.random);
      nextAt = this.o.clock.now() + intervalS * 1000;
    }
  }

  private async sleepUnlessWoken(ms: number, signal: AbortSignal): Promise<void> {
    const ctl = new AbortController();
    const onAbort = (): void => ctl.abort(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    this.wake = () => ctl.abort(new Error('woken'));
    try {
      await this.o.clock.sleep(ms, ctl.signal);
    } catch (err) {
      signal.throwIfAborted();
      if (!ctl.signal.aborted) throw err;
    } finally {
      this.wake = undefined;
      signal.removeEventListener('abort', onAbort);
    }
  }

  /** One heartbeat; true when Ironic accepted it (202). */
  private async beat(signal: AbortSignal): Promise<boolean> {
    const token = this.o.tokens.reveal();
    this.lastSentAt = this.o.clock.now();
    this.stats.sent++;
    let message: string;
    try {
      const serverMax = this.o.api.knownServerMax ?? (await this.o.api.serverMax(this.o.api.preferredUrl, signal));
      const body: Record<string, string> = {
        callback_url: this.o.advertiseUrl(),
        agent_version: this.o.agentVersion,
      };
      if (token !== null) body.agent_token = token;
      const ca = this.o.getVerifyCa();
      if (ca !== undefined && atLeast(serverMax, V_AGENT_VERIFY_CA)) body.agent_verify_ca = ca;
      const res = await this.o.api.request(
        { method: 'POST', path: `/v1/heartbeat/${encodeURIComponent(this.o.nodeUuid)}`, wantVersion: V_AGENT_VERIFY_CA, body },
        signal,
      );
      if (res.status === 202) {
        this.stats.accepted++;
        if (this.lastError) this.o.logger.info('heartbeat accepted again');
        else this.o.logger.debug('heartbeat accepted', { node_uuid: this.o.nodeUuid });
        this.lastError = '';
        return true;
      }
      message = res.status === 409
        ? `heartbeat conflict (the conductor holds the node's lock): ${unwrapIronicError(res.body)}; retrying in 5-10 s`
        : `heartbeat refused: HTTP ${res.status}: ${unwrapIronicError(res.body)}`;
    } catch (err) {
      signal.throwIfAborted();
      message = `heartbeat failed: ${err instanceof Error ? err.message : String(err)}`;
    }
    this.stats.failed++;
    if (message !== this.lastError) this.o.logger.warn(message, { node_uuid: this.o.nodeUuid });
    else this.o.logger.debug(message, { node_uuid: this.o.nodeUuid });
    this.lastError = message;
    return false;
  }
}
