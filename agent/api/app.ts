/**
 * The agent's HTTP API, wire-compatible with ironic-python-agent's `/v1`
 * (research: ipa.md §1, openstack.md §1.5–1.6):
 *
 *   GET  /  and  /v1 , /v1/                     API and version documents
 *   GET  /v1/status  (and /status)              {started_at, version, ...}; no token
 *   GET  /v1/commands[/]  (and /commands[/])    {"commands": [record...]}
 *   GET  /v1/commands/{id}[?wait=true]          one record; wait=true blocks until it ends
 *   POST /v1/commands[/][?wait=true]            {"name": "ext.cmd", "params": {...}} → 200 record
 *
 * In front of the router, one middleware: the request log (one line per
 * request, query values other than `wait` masked), the error handler (the
 * only place that turns errors into `{faultcode, faultstring}`) and the
 * status fast path. (While the app loads, the daemon answers GET /v1/status itself: agent/startup.ts.)
 *
 * Who may do what:
 * - POST needs `?agent_token=` equal to the token on file (constant-time),
 *   as IPA; with no token on file at all (no conductor, local debugging),
 *   commands are taken only from loopback unless allow_remote_commands.
 * - GET of command records is open unless require_token_for_reads: the
 *   Ironic 21.x conductor polls `GET /v1/commands/` without a token, and a
 *   record never holds a secret (params are not serialized; results are scrubbed).
 */
import Koa from 'koa';
import Router from '@koa/router';
import type { Log } from '../logger.js';
import { ApiError, commandNotFound, invalidEnvelope, methodNotAllowed, routeNotFound, tokenInvalid } from './errors.js';
import { CommandStore, type CommandRecord } from './records.js';
import { CommandExecutor, CommandRegistry } from './registry.js';
import type { BackendInfo, CredentialsPort, InventoryPort, LogFile } from './ports.js';
import { isStatusPath, loggablePath, StatusDocument } from './status.js';
import { registerBmcCommands } from './commands/bmc.js';
import { registerStepCommands } from './commands/steps.js';
import { registerSystemCommands } from './commands/system.js';
import type { SealingKey } from '../tls/sealing-key.js';

export interface ApiTokens {
  readonly hasToken: boolean;
  readonly lockdownReason: string | null;
  check(presented: unknown): boolean;
  lockdown(reason: string): void;
}

export interface ApiConfig {
  readonly require_token_for_reads: boolean;
  readonly allow_remote_commands: boolean;
  readonly max_command_records: number;
  readonly max_body_bytes: number;
}

export interface AppDeps {
  credentials: CredentialsPort;
  tokens: ApiTokens;
  log: Log;
  config: ApiConfig;
  /** Agent version reported by /v1/status. */
  version: string;
  /** Masks secrets in collected logs, and learns passwords as they arrive. */
  redactor?: { register(value: string): void; redact(text: string): string };
  /** Seconds since the epoch (default: now). */
  startedAt?: number;
  backend?: BackendInfo;
  /** The status document, shared with a server that answers status before the app exists (default: a new one). */
  status?: StatusDocument;
  collectLogs?: () => Promise<LogFile[]>;
  inventory?: InventoryPort;
  sync?: () => Promise<void>;
  powerOff?: () => Promise<void>;
  /** The caller's address (default: the socket's peer address). */
  clientAddress?: (ctx: Koa.Context) => string | undefined;
  /** The auto-TLS certificate's key, that `password_sealed` is opened with; absent (no auto-TLS), a sealed password is refused. */
  sealingKey?: SealingKey;
}

export interface AgentApi {
  app: Koa;
  store: CommandStore;
  registry: CommandRegistry;
  executor: CommandExecutor;
  /** Hooks wired after start (the conductor client forces a heartbeat when an async command ends). */
  hooks: { onAsyncDone?: (record: CommandRecord) => void };
  /** Sets the backend shown by /v1/status (the API may answer before the backend is open). */
  setBackend(info: BackendInfo): void;
}

const DOCS = 'https://docs.openstack.org/ironic-python-agent';
const MEDIA_TYPE = 'application/vnd.openstack.ironic-python-agent.v1+json';

function isLoopback(addr: string | undefined): boolean {
  if (!addr) return false;
  return addr === '::1' || addr.startsWith('127.') || addr.startsWith('::ffff:127.');
}

/** Reads the request body as text, refusing more than `limit` bytes with 413. */
async function readBody(ctx: Koa.Context, limit: number): Promise<string> {
  const declared = ctx.get('content-length');
  if (declared && Number(declared) > limit) {
    ctx.set('Connection', 'close');
    throw new ApiError(413, `Request body too large: ${declared} bytes exceed the limit of ${limit} bytes`);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of ctx.req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) {
      ctx.set('Connection', 'close');
      throw new ApiError(413, `Request body too large: more than the limit of ${limit} bytes`);
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, size).toString('utf8');
}

/**
 * How deep a command body may nest. Ironic's deepest params (a node's
 * instance_info inside a step) are under ten levels; a record that echoes a
 * 20,000-deep array overflows the serializer's stack instead.
 */
export const MAX_BODY_DEPTH = 64;

/** Depth of a parsed JSON value, walked without recursion (the point is not to overflow). */
function depthExceeds(value: unknown, max: number): boolean {
  const stack: Array<[unknown, number]> = [[value, 1]];
  while (stack.length) {
    const [v, d] = stack.pop()!;
    if (v === null || typeof v !== 'object') continue;
    if (d > max) return true;
    for (const child of Array.isArray(v) ? v : Object.values(v)) if (child !== null && typeof child === 'object') stack.push([child, d + 1]);
  }
  return false;
}

function parseEnvelope(text: string): { name: string; params: Record<string, unknown> } {
  if (!text.trim()) throw invalidEnvelope('the request body is empty; expected {"name": "<extension>.<command>", "params": {...}}');
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch (e) {
    // V8's message quotes the text around the error, which may be a password: only the position is kept.
    const at = /position (\d+)/.exec((e as Error).message)?.[1];
    throw new ApiError(400, `Malformed JSON in request body${at ? ` at position ${at}` : ''}; expected {"name": "<extension>.<command>", "params": {...}}`);
  }
  if (depthExceeds(body, MAX_BODY_DEPTH)) throw invalidEnvelope(`the body nests deeper than ${MAX_BODY_DEPTH} levels`);
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw invalidEnvelope('the body must be a JSON object');
  const obj = body as Record<string, unknown>;
  for (const k of Object.keys(obj)) {
    if (k !== 'name' && k !== 'params') throw invalidEnvelope(`${k}: unknown field (expected only name and params)`);
  }
  if (typeof obj.name !== 'string' || obj.name.length === 0) throw invalidEnvelope('name: must be a non-empty string');
  const params = obj.params === undefined || obj.params === null ? {} : obj.params;
  if (typeof params !== 'object' || Array.isArray(params)) throw invalidEnvelope('params: must be an object');
  return { name: obj.name, params: params as Record<string, unknown> };
}

export function createApp(deps: AppDeps): AgentApi {
  const log = deps.log;
  const cfg = deps.config;
  const store = new CommandStore(cfg.max_command_records);
  const registry = new CommandRegistry();
  const hooks: AgentApi['hooks'] = {};
  const commandDeps = { credentials: deps.credentials, redactor: deps.redactor, sealingKey: deps.sealingKey };
  registerBmcCommands(registry, commandDeps);
  registerStepCommands(registry, commandDeps);
  registerSystemCommands(registry, {
    collectLogs: deps.collectLogs ?? (async () => []),
    lockdown: (reason) => deps.tokens.lockdown(reason),
    sync: deps.sync,
    powerOff: deps.powerOff,
    inventory: deps.inventory,
  });
  const executor = new CommandExecutor({
    registry,
    store,
    log: log.child({ module: 'commands' }),
    onAsyncDone: (rec) => hooks.onAsyncDone?.(rec),
    lockdown: () => deps.tokens.lockdownReason,
  });

  const status = deps.status ?? new StatusDocument(deps.version, deps.startedAt, deps.backend);

  const clientAddress = deps.clientAddress ?? ((ctx: Koa.Context) => ctx.req.socket.remoteAddress);
  const authorizeCommand = (ctx: Koa.Context): void => {
    const presented = ctx.query.agent_token;
    if (deps.tokens.hasToken) {
      if (!deps.tokens.check(presented)) throw tokenInvalid();
      return;
    }
    // No token on file: nothing to authenticate the caller with.
    if (presented !== undefined) throw tokenInvalid();
    if (!cfg.allow_remote_commands && !isLoopback(clientAddress(ctx))) {
      throw new ApiError(403, 'Forbidden: the agent has no token yet, so it accepts commands only from loopback (see --allow-remote-commands)');
    }
  };
  const authorizeRead = (ctx: Koa.Context): void => {
    refuseBrowsers(ctx);
    if (cfg.require_token_for_reads) authorizeCommand(ctx);
  };

  const root = (ctx: Koa.Context): void => {
    const base = `${ctx.protocol}://${ctx.host}`;
    ctx.body = {
      name: 'OpenStack Ironic Python Agent API',
      description: 'Ironic Python Agent is a provisioning agent for OpenStack Ironic (served by inband-agent)',
      versions: [{ id: 'v1', links: [{ href: `${base}/v1/`, rel: 'self' }, { href: DOCS, rel: 'describedby', type: 'text/html' }] }],
      default_version: { id: 'v1', links: [{ href: `${base}/v1/`, rel: 'self' }, { href: DOCS, rel: 'describedby', type: 'text/html' }] },
    };
  };
  const v1 = (ctx: Koa.Context): void => {
    const base = `${ctx.protocol}://${ctx.host}`;
    ctx.body = {
      id: 'v1',
      links: [{ href: `${base}/v1/`, rel: 'self' }, { href: DOCS, rel: 'describedby', type: 'text/html' }],
      media_types: [{ base: 'application/json', type: MEDIA_TYPE }],
      commands: [{ href: `${base}/v1/commands/`, rel: 'self' }, { href: `${base}/commands/`, rel: 'bookmark' }],
      status: [{ href: `${base}/v1/status`, rel: 'self' }, { href: `${base}/status`, rel: 'bookmark' }],
    };
  };

  const router = new Router();
  router.get('/', root);
  router.get(['/v1', '/v1/'], v1);
  // The list is what the conductor polls. Once every record in it has finished it cannot change
  // until one is added, so its bytes are kept and reused: 50 records of clean steps are ~100 KB of
  // JSON, serialized again for every poll before.
  let listCache: { version: number; body: Buffer } | null = null;
  router.get(['/v1/commands', '/commands'], (ctx) => {
    authorizeRead(ctx);
    ctx.type = 'json';
    if (store.running()) {
      ctx.body = listBody(store.list(), log);
      return;
    }
    if (listCache?.version !== store.version) listCache = { version: store.version, body: listBody(store.list(), log) };
    ctx.body = listCache.body;
  });
  router.get(['/v1/commands/:id', '/commands/:id'], async (ctx) => {
    authorizeRead(ctx);
    const rec = store.get(ctx.params.id!);
    if (!rec) throw commandNotFound(ctx.params.id!);
    if (String(ctx.query.wait ?? '').toLowerCase() === 'true') await rec.done;
    ctx.type = 'json';
    ctx.body = recordJson(rec, log);
  });
  router.post(['/v1/commands', '/commands'], async (ctx) => {
    refuseBrowsers(ctx);
    requireJson(ctx);
    authorizeCommand(ctx);
    const { name, params } = parseEnvelope(await readBody(ctx, cfg.max_body_bytes));
    const rec = await executor.execute(name, params);
    if (String(ctx.query.wait ?? '').toLowerCase() === 'true') await rec.done;
    ctx.type = 'json';
    ctx.body = recordJson(rec, log);
  });

  const app = new Koa();
  app.proxy = false;
  const reqLog = log.child({ module: 'http' });

  // One middleware in front of the router: the request log line, the error
  // handler and the status fast path. (Three async middleware cost a closure,
  // a promise and a dispatch each on every request for nothing.)
  app.use(async (ctx, next) => {
    const t0 = performance.now();
    // A refused request's line says why (the faultstring, which never echoes a submitted value).
    let reason: string | undefined;
    try {
      if (isStatusPath(ctx.path)) {
        // IPA's status route is GET only (werkzeug adds HEAD); anything else is 405, as there.
        if (ctx.method !== 'GET' && ctx.method !== 'HEAD') {
          ctx.set('Allow', 'GET, HEAD');
          throw methodNotAllowed('GET, HEAD');
        }
        ctx.set('Content-Type', 'application/json');
        ctx.body = status.body;
        return;
      }
      await next();
      if (ctx.body === undefined && ctx.status === 404) throw routeNotFound();
    } catch (e) {
      const err = e instanceof ApiError ? e : asApiError(e, log);
      ctx.status = err.status;
      ctx.body = { faultcode: err.faultcode, faultstring: err.message };
      reason = err.message;
    } finally {
      const line = `${ctx.method} ${loggablePath(ctx.url)} ${ctx.status} ${(performance.now() - t0).toFixed(1)}ms${reason ? `: ${reason}` : ''}`;
      if (ctx.status >= 500) reqLog.error(line);
      else if (ctx.status >= 400) reqLog.warn(line);
      else reqLog.info(line);
    }
  });

  app.use(router.routes());
  app.use(async (ctx, next) => {
    await next();
    const matched = router.match(ctx.path, ctx.method);
    if (!matched.route && matched.path.length > 0) {
      const allowed = [...new Set(matched.path.flatMap((l) => l.methods))].join(', ');
      ctx.set('Allow', allowed);
      throw methodNotAllowed(allowed);
    }
  });

  return { app, store, registry, executor, hooks, setBackend: (b) => status.setBackend(b) };
}

/**
 * The API serves no web page, so a request that carries an `Origin` comes from a
 * browser running someone else's page (or a DNS-rebound name for this host):
 * Ironic and its clients never send one. Loopback is no boundary for those: any
 * page open on the node can reach 127.0.0.1. `Sec-Fetch-Site: cross-site` or
 * `same-site` is the same signal from a browser that left Origin out (a GET).
 */
function refuseBrowsers(ctx: Koa.Context): void {
  const origin = ctx.get('origin');
  const site = ctx.get('sec-fetch-site').toLowerCase();
  if (origin || site === 'cross-site' || site === 'same-site') {
    throw new ApiError(403, 'Forbidden: requests from a web page (an Origin header) are refused; the agent API is for Ironic and its tools, not browsers');
  }
}

/**
 * Commands are `application/json` only: a browser sends `text/plain`, form or
 * multipart bodies cross-origin without asking first (no CORS preflight), JSON it
 * must ask for, and this API never answers a preflight.
 */
function requireJson(ctx: Koa.Context): void {
  const type = (ctx.get('content-type').split(';')[0] ?? '').trim().toLowerCase();
  if (type !== 'application/json' && !/^application\/[a-z0-9.+-]+\+json$/.test(type)) {
    throw new ApiError(415, 'Unsupported Media Type: command requests must be sent with Content-Type: application/json');
  }
}

/**
 * One record as JSON. A record the serializer cannot write (too deep, a cycle) is
 * answered as a FAILED stub with its id, so it can never make the whole list fail.
 */
function recordJson(rec: CommandRecord, log: Log): string {
  try {
    return JSON.stringify(rec);
  } catch (e) {
    log.error(`command record ${rec.id} (${rec.name}) cannot be serialized: ${(e as Error).name}; answered as a FAILED stub`, { module: 'http' });
    return JSON.stringify({
      id: rec.id, command_name: rec.commandName, command_status: rec.running ? 'RUNNING' : 'FAILED', command_result: null,
      command_error: { type: 'SerializationError', code: 500, message: 'The command record could not be serialized', details: `${(e as Error).name}; the command ran with status ${rec.status}` },
    });
  }
}

function listBody(records: readonly CommandRecord[], log: Log): Buffer {
  return Buffer.from(`{"commands":[${records.map((r) => recordJson(r, log)).join(',')}]}`);
}

/** Anything not an ApiError: Koa's own http-errors keep their status; the rest is a logged 500. */
function asApiError(e: unknown, log: Log): ApiError {
  const he = e as { status?: unknown; expose?: unknown; message?: unknown };
  if (typeof he?.status === 'number' && he.status >= 400 && he.status < 500 && he.expose) return new ApiError(he.status, String(he.message));
  log.error(`internal error: ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`, { module: 'http' });
  return new ApiError(500, 'Internal server error; see the agent log');
}
