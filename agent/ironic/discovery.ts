/**
 * Discovery (scenario 1): the node is unknown to Ironic, so lookup answers 404. The
 * agent posts its inventory to the inspection callback in IPA's payload shape
 * (research: ipa.md §5.3), either the legacy inspector's `/v1/continue`
 * (`ipa-inspection-callback-url`) or Ironic's own `/v1/continue_inspection` (API >= 1.84).
 *
 * The answer may ask the agent to set BMC credentials in-band:
 *   {"bmc_credentials": {"username": "...", "password": "...", ...engine request fields}}
 * The agent applies them through the injected `applyDiscoveredCredentials` and reports
 * the outcome to the same callback:
 *   {"uuid": <answer's uuid>, "bmc_credentials_result": {"status": "succeeded", "result": {...}}}
 *   {"uuid": ..., "bmc_credentials_result": {"status": "failed", "error": "..."}}
 * The password is never logged and never sent back. Credentials are accepted only
 * from a callback the agent can authenticate: https with the certificate verified,
 * or loopback (tests, local relays). With `ipa-insecure` the certificate is not
 * checked, so anyone on the path could answer: the credentials are refused (the
 * inventory is still posted), and the agent says so at start and on each answer.
 */
import type { IronicApiClient } from './api-client.js';
import { unwrapIronicError } from './ironic-error.js';
import type { Clock, IronicClientLogger, DiscoveredCredentials } from './types.js';

/** IPA's inspection retry: 5 attempts, waits 5 s × 1.5^n capped at 30 s, on connection errors, 5xx and 409. */
const ATTEMPTS = 5;
const MIN_WAIT_S = 5;
const MAX_WAIT_S = 30;

export interface DiscoveryOptions {
  api: IronicApiClient;
  callbackUrl: string;
  inventory: Record<string, unknown>;
  agentVersion: string;
  applyDiscoveredCredentials?: ((creds: DiscoveredCredentials) => Promise<object>) | undefined;
  clock: Clock;
  logger: IronicClientLogger;
  signal?: AbortSignal;
  /** `ipa-insecure`: TLS certificates are not verified, so no peer is authenticated. */
  insecure?: boolean | undefined;
}

export interface DiscoveryOutcome {
  posted: boolean;
  /** The node UUID the callback answered with, if any. */
  uuid?: string;
  credentials?: 'none' | 'applied' | 'failed' | 'refused';
}

interface RootDisk {
  name?: unknown;
  size?: unknown;
  [k: string]: unknown;
}

/** IPA's default root device: the smallest disk of at least 4 GiB (hardware.py get_os_install_device). */
export function pickRootDisk(inventory: Record<string, unknown>): RootDisk | null {
  const disks = Array.isArray(inventory.disks) ? (inventory.disks as RootDisk[]) : [];
  const big = disks.filter((d) => typeof d.size === 'number' && d.size >= 4 * 1024 ** 3);
  big.sort((a, b) => (a.size as number) - (b.size as number));
  return big[0] ?? null;
}

/** IPA's inspection payload (inspector.py collect_default + call_inspector). */
export function inspectionPayload(inventory: Record<string, unknown>, agentVersion: string): Record<string, unknown> {
  const boot = (inventory.boot ?? {}) as { pxe_interface?: unknown };
  return {
    inventory,
    root_disk: pickRootDisk(inventory),
    boot_interface: typeof boot.pxe_interface === 'string' ? boot.pxe_interface : null,
    configuration: { collectors: ['default'], managers: [{ name: 'inband_agent', version: agentVersion }] },
    error: null,
  };
}

function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '');
  return h === 'localhost' || h === '::1' || /^127\.\d+\.\d+\.\d+$/.test(h);
}

/**
 * Whether credentials received from `url` can be trusted: TLS with the peer's
 * certificate verified, or never left the host. With `insecure` (certificates
 * unchecked) nothing is authenticated, loopback https included.
 */
export function callbackIsTrusted(url: string, insecure = false): boolean {
  if (insecure) return false;
  const u = new URL(url);
  return u.protocol === 'https:' || isLoopbackHost(u.hostname);
}

export const INSECURE_REFUSAL = 'BMC credentials are refused: ipa-insecure is set, so the callback\'s TLS certificate is not verified and its answer cannot be authenticated';

function scrub(text: string, secret: string): string {
  return secret ? text.split(secret).join('***') : text;
}

function scrubValue(value: unknown, secret: string): unknown {
  if (!secret) return value;
  return JSON.parse(scrub(JSON.stringify(value ?? null), secret));
}

export async function runDiscovery(o: DiscoveryOptions): Promise<DiscoveryOutcome> {
  const answer = await postWithRetry(o, inspectionPayload(o.inventory, o.agentVersion), 'inventory');
  if (answer === undefined) return { posted: false };
  const uuid = typeof answer.uuid === 'string' ? answer.uuid : undefined;
  o.logger.info(`inventory posted to ${o.callbackUrl}${uuid ? `; node ${uuid}` : ''}`);
  const raw = answer.bmc_credentials;
  if (raw === undefined || raw === null) return { posted: true, ...(uuid ? { uuid } : {}), credentials: 'none' };

  const creds = raw as Record<string, unknown>;
  const password = typeof creds.password === 'string' ? creds.password : '';
  let result: Record<string, unknown>;
  let outcome: DiscoveryOutcome['credentials'];
  if (typeof creds !== 'object' || typeof creds.username !== 'string' || !creds.username || !password) {
    outcome = 'failed';
    result = { status: 'failed', error: 'bmc_credentials must carry a non-empty username and password' };
  } else if (!callbackIsTrusted(o.callbackUrl, o.insecure)) {
    outcome = 'refused';
    result = { status: 'refused', error: o.insecure ? INSECURE_REFUSAL : 'BMC credentials are accepted only over https (or from loopback)' };
  } else if (!o.applyDiscoveredCredentials) {
    outcome = 'refused';
    result = { status: 'refused', error: 'this agent cannot set BMC credentials (no credential engine configured)' };
  } else {
    try {
      const applied = await o.applyDiscoveredCredentials({ ...creds, username: creds.username, password } as DiscoveredCredentials);
      outcome = 'applied';
      result = { status: 'succeeded', result: scrubValue(applied, password) };
    } catch (err) {
      outcome = 'failed';
      result = { status: 'failed', error: scrub(err instanceof Error ? err.message : String(err), password) };
    }
  }
  const level = outcome === 'applied' ? 'info' : 'error';
  o.logger[level](`BMC credentials from discovery for user ${JSON.stringify(creds.username)}: ${outcome}` +
    (typeof result.error === 'string' ? ` (${result.error})` : ''));
  await postWithRetry(o, { ...(uuid ? { uuid } : {}), bmc_credentials_result: result }, 'credential result');
  return { posted: true, ...(uuid ? { uuid } : {}), credentials: outcome };
}

async function postWithRetry(o: DiscoveryOptions, body: Record<string, unknown>, what: string): Promise<Record<string, unknown> | undefined> {
  for (let attempt = 1; attempt <= ATTEMPTS; attempt++) {
    let retryable = true;
    let message: string;
    try {
      // No microversion header: Ironic's continue_inspection accepts the inspector-compatible 1.1 (ramdisk.py).
      const res = await o.api.request({ method: 'POST', path: '', absoluteUrl: o.callbackUrl, wantVersion: null, body }, o.signal);
      if (res.status >= 200 && res.status < 300) {
        try {
          const doc = res.body ? JSON.parse(res.body) : {};
          return doc && typeof doc === 'object' ? (doc as Record<string, unknown>) : {};
        } catch {
          return {};
        }
      }
      retryable = res.status >= 500 || res.status === 409;
      message = `HTTP ${res.status}: ${unwrapIronicError(res.body)}`;
    } catch (err) {
      if (o.signal?.aborted) throw err;
      message = err instanceof Error ? err.message : String(err);
    }
    if (!retryable || attempt === ATTEMPTS) {
      o.logger.error(`posting the ${what} to ${o.callbackUrl} failed: ${message}`);
      return undefined;
    }
    const waitS = Math.min(MAX_WAIT_S, MIN_WAIT_S * 1.5 ** (attempt - 1));
    o.logger.warn(`posting the ${what} to ${o.callbackUrl} failed (${message}); retrying in ${waitS.toFixed(1)} s`);
    await o.clock.sleep(waitS * 1000, o.signal);
  }
  return undefined;
}
