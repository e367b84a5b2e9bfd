/**
 * Talks to one or more Ironic API URLs: discovers each one's maximum microversion
 * (`GET /`), sends JSON requests with `X-OpenStack-Ironic-API-Version`, and fails
 * over to the next URL on connection errors, moving the URL that answered to the
 * front (as IPA does). HTTP error statuses are answers, not reasons to fail over.
 *
 * Bodies are never logged here: heartbeats carry the agent token, lookups return it.
 */
import { type ApiVersion, formatVersion, maxVersionFromRoot, minVersion } from './api-version.js';
import { describeHttpError } from './ironic-error.js';
import type { IronicClientLogger, FetchLike } from './types.js';

export interface ApiResponse {
  status: number;
  /** Raw body text (may contain a token: never log it). */
  body: string;
  /** The API URL that answered. */
  baseUrl: string;
  /** The microversion the request was sent with (undefined: no header). */
  version: ApiVersion | undefined;
  /** The server's maximum microversion. */
  serverMax: ApiVersion;
}

/** No API URL could be reached (every one failed with a connection error or timeout). */
export class IronicUnreachableError extends Error {
  override readonly name = 'IronicUnreachableError';
  constructor(readonly failures: readonly string[]) {
    super(`no Ironic API URL answered: ${failures.join('; ')}`);
  }
}

/** A reachable API URL whose root document names no usable version. */
class VersionDiscoveryError extends Error {
  override readonly name = 'VersionDiscoveryError';
}

export interface ApiRequest {
  method: 'GET' | 'POST';
  /** Path and query under the API URL, e.g. `/v1/lookup?addresses=...`. Must carry no secret. */
  path: string;
  /**
   * Highest microversion wanted; the request is sent at min(server max, wanted).
   * `null` sends no version header (Ironic then treats it as 1.1).
   */
  wantVersion: ApiVersion | null;
  body?: unknown;
  /** Absolute URL to call instead of an API URL (discovery callbacks); no fail-over. */
  absoluteUrl?: string;
}

export interface IronicApiClientOptions {
  urls: readonly string[];
  fetch: FetchLike;
  logger: IronicClientLogger;
  /** Per-request timeout, ms. */
  timeoutMs: number;
  requestId?: string | undefined;
  /** Operator-pinned version (`ipa-ironic-api-version`): used as every server's maximum, no `GET /`. */
  pinnedVersion?: ApiVersion | undefined;
}

function trimSlash(u: string): string {
  return u.replace(/\/+$/, '');
}

/** The path without its query string, for log lines. */
export function redactPath(path: string): string {
  const i = path.indexOf('?');
  return i < 0 ? path : `${path.slice(0, i)}?…`;
}

export class IronicApiClient {
  private urls: string[];
  private readonly versions = new Map<string, ApiVersion>();
  private readonly opts: IronicApiClientOptions;

  constructor(opts: IronicApiClientOptions) {
    if (opts.urls.length === 0) throw new Error('at least one Ironic API URL is required');
    this.opts = opts;
    this.urls = opts.urls.map(trimSlash);
  }

  /** The API URL currently preferred (the last one that answered). */
  get preferredUrl(): string {
    return this.urls[0]!;
  }

  /** Cached server maximum for the preferred URL, if known. */
  get knownServerMax(): ApiVersion | undefined {
    return this.versions.get(this.preferredUrl);
  }

  async request(req: ApiRequest, signal?: AbortSignal): Promise<ApiResponse> {
    if (req.absoluteUrl !== undefined) {
      const serverMax = this.knownServerMax ?? (await this.serverMax(this.preferredUrl, signal));
      const version = req.wantVersion ? minVersion(serverMax, req.wantVersion) : undefined;
      const { status, body } = await this.send(req.absoluteUrl, req, version, signal);
      return { status, body, baseUrl: req.absoluteUrl, version, serverMax };
    }
    const failures: string[] = [];
    for (const base of [...this.urls]) {
      signal?.throwIfAborted();
      try {
        const serverMax = await this.serverMax(base, signal);
        const version = req.wantVersion ? minVersion(serverMax, req.wantVersion) : undefined;
        const { status, body } = await this.send(base + req.path, req, version, signal);
        this.promote(base);
        return { status, body, baseUrl: base, version, serverMax };
      } catch (err) {
        if (signal?.aborted) throw signal.reason;
        const why = err instanceof Error ? err.message : String(err);
        failures.push(`${base}: ${why}`);
        if (this.urls.length > 1) this.opts.logger.warn(`Ironic API ${base} failed (${why}); trying the next API URL`);
      }
    }
    throw new IronicUnreachableError(failures);
  }

  /** The server's maximum microversion, from `GET <url>/` (cached per URL). */
  async serverMax(base: string, signal?: AbortSignal): Promise<ApiVersion> {
    if (this.opts.pinnedVersion) return this.opts.pinnedVersion;
    const cached = this.versions.get(base);
    if (cached) return cached;
    const { status, body } = await this.send(`${base}/`, { method: 'GET', path: '/', wantVersion: null }, undefined, signal);
    if (status !== 200) throw new VersionDiscoveryError(`GET / answered ${describeHttpError(status, body)}`);
    let doc: unknown;
    try {
      doc = JSON.parse(body);
    } catch {
      throw new VersionDiscoveryError('GET / did not answer JSON; is this an Ironic API URL?');
    }
    const max = maxVersionFromRoot(doc);
    if (!max) throw new VersionDiscoveryError('GET / names no API version; is this an Ironic API URL?');
    this.versions.set(base, max);
    this.opts.logger.info(`Ironic API ${base} supports microversions up to ${formatVersion(max)}`);
    return max;
  }

  /** Forget discovered versions (e.g. after the conductor was upgraded under us). */
  forgetVersions(): void {
    this.versions.clear();
  }

  private promote(base: string): void {
    if (this.urls[0] === base) return;
    this.urls = [base, ...this.urls.filter((u) => u !== base)];
    this.opts.logger.info(`Ironic API ${base} answered; using it first from now on`);
  }

  private async send(url: string, req: ApiRequest, version: ApiVersion | undefined, signal?: AbortSignal): Promise<{ status: number; body: string }> {
    const headers: Record<string, string> = { Accept: 'application/json' };
    if (req.body !== undefined) headers['Content-Type'] = 'application/json';
    if (version) headers['X-OpenStack-Ironic-API-Version'] = formatVersion(version);
    if (this.opts.requestId) headers['X-OpenStack-Request-ID'] = this.opts.requestId;
    // One controller bounds the request by both the timeout and the caller's signal.
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(new Error(`no answer within ${this.opts.timeoutMs} ms`)), this.opts.timeoutMs);
    const onAbort = (): void => ctl.abort(signal?.reason);
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      const res = await this.opts.fetch(url, {
        method: req.method,
        headers,
        ...(req.body !== undefined ? { body: JSON.stringify(req.body) } : {}),
        signal: ctl.signal,
      });
      const body = await res.text();
      return { status: res.status, body };
    } catch (err) {
      if (ctl.signal.aborted && !signal?.aborted) throw ctl.signal.reason;
      throw describeFetchError(err);
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    }
  }
}

/** undici hides the errno under `cause`; surface it (ECONNREFUSED, ENOTFOUND...). */
function describeFetchError(err: unknown): Error {
  if (!(err instanceof Error)) return new Error(String(err));
  const cause = (err as { cause?: { code?: string; message?: string } }).cause;
  if (cause && (cause.code || cause.message)) return new Error(`${err.message}: ${cause.code ?? cause.message}`);
  return err;
}
