/**
 * Lookup: `GET /v1/lookup?addresses=<every MAC>[&node_uuid=]` until Ironic names the
 * node (research: ipa.md §2.2–2.3). Retries with random-exponential back-off on any
 * failure, pauses longer on 409, gives up after lookup_timeout.
 */
import { IronicUnreachableError, type IronicApiClient } from './api-client.js';
import { type ApiVersion, atLeast, formatVersion, V_AGENT_TOKEN, V_AGENT_VERIFY_CA } from './api-version.js';
import { conflictPauseSeconds, lookupBackoffSeconds } from './backoff.js';
import { unwrapIronicError } from './ironic-error.js';
import type { Clock, IronicClientLogger, LookupConfig, LookupNode, RandomSource } from './types.js';

/** Ironic's default `[api]ramdisk_heartbeat_timeout`, used when lookup's config lacks it. */
export const DEFAULT_HEARTBEAT_TIMEOUT_S = 300;

export interface LookupResult {
  node: LookupNode;
  /** Lookup's config with `agent_token` removed (so it can be passed around and logged safely). */
  config: LookupConfig;
  /** `config.agent_token` as received: a token, `******` (already handed out) or null. Never log it. */
  agentToken: string | null | undefined;
  heartbeatTimeoutS: number;
  /** The API URL that answered. */
  baseUrl: string;
  serverMax: ApiVersion;
}

/** Lookup did not succeed within lookup_timeout. */
export class LookupTimeoutError extends Error {
  override readonly name = 'LookupTimeoutError';
}

/** The conductor's API is too old for an agent token: refuse rather than run unauthenticated. */
export class IncompatibleIronicError extends Error {
  override readonly name = 'IncompatibleIronicError';
}

export interface LookupOptions {
  api: IronicApiClient;
  macs: readonly string[];
  nodeUuid?: string | undefined;
  clock: Clock;
  random: RandomSource;
  logger: IronicClientLogger;
  timeoutS: number;
  intervalS: number;
  /** Called after each 404 (no node matches); discovery hooks in here. */
  onNotFound?: (info: { baseUrl: string; serverMax: ApiVersion }) => Promise<void>;
  signal?: AbortSignal;
}

export function lookupPath(macs: readonly string[], nodeUuid?: string): string {
  const q = new URLSearchParams();
  if (macs.length > 0) q.set('addresses', macs.join(','));
  if (nodeUuid) q.set('node_uuid', nodeUuid);
  // MAC colons stay readable; Ironic parses either form.
  return `/v1/lookup?${q.toString().replace(/%3A/gi, ':').replace(/%2C/gi, ',')}`;
}

type Attempt =
  | { kind: 'found'; result: LookupResult }
  | { kind: 'not-found'; baseUrl: string; serverMax: ApiVersion }
  | { kind: 'conflict'; message: string }
  | { kind: 'failed'; message: string };

async function attemptLookup(o: LookupOptions): Promise<Attempt> {
  let res;
  try {
    res = await o.api.request({ method: 'GET', path: lookupPath(o.macs, o.nodeUuid), wantVersion: V_AGENT_VERIFY_CA }, o.signal);
  } catch (err) {
    if (o.signal?.aborted) throw err;
    if (err instanceof IronicUnreachableError) return { kind: 'failed', message: err.message };
    return { kind: 'failed', message: err instanceof Error ? err.message : String(err) };
  }
  if (!atLeast(res.serverMax, V_AGENT_TOKEN)) {
    throw new IncompatibleIronicError(
      `Ironic API ${res.baseUrl} supports only up to ${formatVersion(res.serverMax)}; the agent needs >= ${formatVersion(V_AGENT_TOKEN)} ` +
        'so that commands are authenticated with an agent token',
    );
  }
  if (res.status === 404) return { kind: 'not-found', baseUrl: res.baseUrl, serverMax: res.serverMax };
  if (res.status === 409) return { kind: 'conflict', message: unwrapIronicError(res.body) };
  if (res.status !== 200) return { kind: 'failed', message: `HTTP ${res.status}: ${unwrapIronicError(res.body)}` };
  let doc: { node?: LookupNode; config?: LookupConfig & { agent_token?: string | null }; heartbeat_timeout?: number };
  try {
    doc = JSON.parse(res.body);
  } catch {
    return { kind: 'failed', message: 'lookup answered 200 with a body that is not JSON' };
  }
  if (!doc || typeof doc !== 'object' || !doc.node || typeof doc.node.uuid !== 'string') {
    return { kind: 'failed', message: 'lookup answered 200 without node.uuid' };
  }
  // Old APIs put heartbeat_timeout at the top level instead of in config (IPA _do_lookup).
  const rawConfig = doc.config ?? { heartbeat_timeout: doc.heartbeat_timeout };
  const { agent_token: agentToken, ...config } = rawConfig;
  const hb = Number(config.heartbeat_timeout);
  return {
    kind: 'found',
    result: {
      node: doc.node,
      config,
      agentToken,
      heartbeatTimeoutS: Number.isFinite(hb) && hb > 0 ? hb : DEFAULT_HEARTBEAT_TIMEOUT_S,
      baseUrl: res.baseUrl,
      serverMax: res.serverMax,
    },
  };
}

export async function lookupNode(o: LookupOptions): Promise<LookupResult> {
  const start = o.clock.now();
  const timeoutMs = o.timeoutS * 1000;
  let attempt = 0;
  let conflicts = 0;
  let lastMessage = '';
  for (;;) {
    o.signal?.throwIfAborted();
    attempt++;
    const a = await attemptLookup(o);
    let extraPauseS = 0;
    let message: string;
    switch (a.kind) {
      case 'found':
        o.logger.info(`lookup found node ${a.result.node.uuid} via ${a.result.baseUrl} after ${attempt} attempt(s)`, {
          node_uuid: a.result.node.uuid,
          heartbeat_timeout: a.result.heartbeatTimeoutS,
        });
        return a.result;
      case 'not-found':
        // Ironic answers 404 both for "no such node" and "node not in a state that allows lookup".
        message = `lookup: no node matches MACs ${o.macs.join(',')}${o.nodeUuid ? ` / uuid ${o.nodeUuid}` : ''} ` +
          '(not enrolled, or not in a state that allows lookup such as clean wait; check if inspection has completed)';
        break;
      case 'conflict':
        conflicts++;
        extraPauseS = conflictPauseSeconds(conflicts);
        message = `lookup conflict (node locked by the conductor): ${a.message}; pausing ${extraPauseS} s more`;
        break;
      case 'failed':
        message = `lookup failed: ${a.message}`;
        break;
    }
    // Same failure again and again: log it once at warn, then at debug.
    if (message !== lastMessage) o.logger.warn(message);
    else o.logger.debug(message, { attempt });
    lastMessage = message;
    if (a.kind === 'not-found') await o.onNotFound?.({ baseUrl: a.baseUrl, serverMax: a.serverMax });
    const elapsed = o.clock.now() - start;
    if (elapsed >= timeoutMs) {
      throw new LookupTimeoutError(`lookup gave up after ${Math.round(elapsed / 1000)} s (${attempt} attempts; lookup_timeout ${o.timeoutS} s): ${message}`);
    }
    const waitS = lookupBackoffSeconds(attempt, o.intervalS, o.random) + extraPauseS;
    await o.clock.sleep(Math.min(waitS * 1000, timeoutMs - elapsed), o.signal);
  }
}
