/**
 * What the conductor client needs from the rest of the daemon, as structural
 * types: the daemon's config, logger and token store satisfy them without this
 * folder importing Koa or the HTTP layer.
 */

/**
 * The subset of the daemon's config (agent/config.ts `Config`, IPA option names) the
 * conductor client reads. Durations are in seconds, as on the kernel command line.
 */
export interface IronicClientConfig {
  /** Ironic API URLs (`ipa-api-url`, comma-separated); tried in order, fail-over on connection errors. */
  readonly api_url?: readonly string[];
  /** Give up looking the node up after this many seconds (`ipa-lookup-timeout`, IPA default 600). */
  readonly lookup_timeout?: number;
  /** Smallest pause between lookups (`ipa-lookup-interval`, IPA default 1). */
  readonly lookup_interval?: number;
  /** Legacy inspector callback (`ipa-inspection-callback-url`); enables discovery on a lookup 404. */
  readonly inspection_callback_url?: string;
  /** Do not verify the conductor's TLS certificate (`ipa-insecure`). */
  readonly insecure?: boolean;
  /** Per-request timeout to the conductor (`ipa-http-request-timeout`, IPA default 30). */
  readonly http_request_timeout?: number;
  /** Pin the Ironic API microversion instead of discovering it (`ipa-ironic-api-version`). */
  readonly ironic_api_version?: string;
  /** Sent as `X-OpenStack-Request-ID` (`ipa-global-request-id`). */
  readonly global_request_id?: string;
}

/** The agent's logger (agent/logger.ts) satisfies this; tests pass a recorder. */
export interface IronicClientLogger {
  error(message: string, meta?: Record<string, unknown>): unknown;
  warn(message: string, meta?: Record<string, unknown>): unknown;
  info(message: string, meta?: Record<string, unknown>): unknown;
  debug(message: string, meta?: Record<string, unknown>): unknown;
}

/**
 * The agent token store (agent/token.ts `AgentTokenStore` satisfies it). `applyLookup`
 * takes lookup's `config.agent_token`: it keeps a token of >= 32 characters, and on
 * `******` with no token on file it locks the API down. `reveal()` is the token for
 * the heartbeat body.
 */
export interface IronicTokens {
  applyLookup(token: unknown): 'accepted' | 'kept' | 'lockdown' | 'ignored';
  reveal(): string | null;
  readonly hasToken: boolean;
  readonly lockdownReason: string | null;
}

/** The few parts of a fetch Response the client reads; global `fetch` satisfies {@link FetchLike}. */
export interface FetchResponseLike {
  readonly status: number;
  readonly headers: { get(name: string): string | null };
  text(): Promise<string>;
}

export interface FetchInitLike {
  method?: string;
  headers?: Record<string, string>;
  body?: string;
  signal?: AbortSignal;
}

export type FetchLike = (url: string, init: FetchInitLike) => Promise<FetchResponseLike>;

/** Time source and sleeper; injected so back-off and heartbeat intervals are testable instantly. */
export interface Clock {
  /** Milliseconds, monotonic. */
  now(): number;
  /** Resolves after `ms`, or rejects with the signal's reason when it aborts. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

/** Uniform [0, 1) random source (Math.random by default). */
export type RandomSource = () => number;

/** Credentials handed to the daemon when a discovery answer carries them. Never logged. */
export interface DiscoveredCredentials {
  username: string;
  password: string;
  /** Optional extras the conductor may send, passed through as the engine's request fields. */
  [field: string]: unknown;
}

/** Lookup's `node` as Ironic returns it (only the fields the agent reads are typed). */
export interface LookupNode {
  uuid: string;
  properties?: Record<string, unknown>;
  instance_info?: Record<string, unknown>;
  driver_internal_info?: Record<string, unknown>;
  [field: string]: unknown;
}

/** Lookup's `config`; `agent_token` is stripped before it is handed on (see {@link LookupResult}). */
export interface LookupConfig {
  heartbeat_timeout?: number;
  agent_token_required?: boolean;
  tls_min_version?: string;
  agent_skip_bmc_detect?: boolean;
  [field: string]: unknown;
}
