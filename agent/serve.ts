/**
 * `inband-agent serve`: wires config, logger, token store, IPMI backend,
 * credential engine, the HTTP API and (when `api_url` is set and not
 * `--standalone`) the conductor client, in IPA's order: the API listens
 * first, then lookup and heartbeats start, so the conductor's first callback
 * finds it answering.
 */
import { createServer as createHttpServer, type Server } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { isIP } from 'node:net';
import { ipmiCallOptions, type LoadedConfig, type Config } from './config.js';
import { createLogger, type AgentLogger, type Log } from './logger.js';
import { AgentTokenStore } from './token.js';
import type { AgentApi } from './api/app.js';
import type { IronicClientHandle, StartIronicClientDeps } from './ironic/index.js';
import type { Inventory } from './inventory/types.js';
import type { CredentialsPort } from './api/ports.js';
import { StatusDocument } from './api/status.js';
import { startupFront } from './startup.js';
import { defaultConnectionLimits, guardConnections, type ConnectionGuard } from './http-guard.js';
import { makeNonDumpable } from './harden.js';
import { giveBackFreeMemory, loadMemoryAddon, type MemoryGiveBack } from './memory.js';
import type { TlsSetup } from './tls/server-tls.js';
import type { Transport } from '../ipmi-kcs/transport.js';
import type { BackendPlan, Selection } from '../ipmi-kcs/select.js';
import { NoBmcError } from '../ipmi-kcs/errors.js';
import { chooseBackendFromConfig, noBmcStatus, openBackendFromConfig, stampBackend, type BackendExtras } from './backend.js';
import type { CredentialService } from '../service/credential-service.js';
import { VERSION } from '../service/version.js';
import { checkStateDir } from '../service/journal.js';

export { chooseBackendFromConfig, openBackendFromConfig, type BackendExtras };

/** The version the agent reports to Ironic (agent_version) and in /v1/status: package.json's. */
export const AGENT_VERSION = VERSION;

export interface ServeOptions {
  loaded: LoadedConfig;
  /** Where log lines go (default stdout). */
  stdout?: NodeJS.WritableStream & { isTTY?: boolean };
  logger?: AgentLogger;
  /** Opens the IPMI backend (default: ipmi-kcs/select.ts openTransport with the backend flags). */
  openBackend?: (config: Config, log: Log, extra?: BackendExtras) => Promise<{ transport: Transport; selection: Selection }>;
  /** Device nodes `auto` looks for (default /dev/ipmi0, /dev/ipmi/0, /dev/ipmidev/0); tests point it at an empty directory. */
  ipmiDevices?: readonly string[];
  /** Loads the Ironic client module (default: dynamic import of ./ironic/index.js). */
  loadIronicClient?: () => Promise<IronicClientModule>;
  /** Collects the inventory (default: agent/inventory with the BMC's LAN address read in-band). */
  collectInventory?: () => Promise<Inventory>;
}

/** What serve needs from agent/ironic/index.js (loaded lazily; it may be absent in a trimmed build). */
export interface IronicClientModule {
  startIronicClient(deps: StartIronicClientDeps): Promise<Pick<IronicClientHandle, 'stop' | 'forceHeartbeat'>>;
}

export interface RunningAgent {
  url: string;
  port: number;
  api: AgentApi;
  tokens: AgentTokenStore;
  logger: AgentLogger;
  tls: TlsSetup;
  /** The backend in use; undefined while the agent has no BMC (a node without an IPMI device). */
  readonly selection: Selection | undefined;
  /** The credential engine; undefined, like `selection`, while the agent has no BMC. */
  readonly credentials: CredentialService | undefined;
  /** The listener's connection cap and timeouts (http-guard.ts). */
  connections: ConnectionGuard;
  /** Resolves when the agent stopped: closed, or given up (e.g. lookup timed out; then `fatal` is set). */
  stopped: Promise<void>;
  /** Why the agent gave up on its own, if it did (the CLI exits non-zero so systemd restarts it). */
  readonly fatal: Error | undefined;
  close(): Promise<void>;
}

/** The local address the kernel would use to reach `url`'s host (`ip route get`), without sending a packet. */
export async function sourceAddressFor(url: string): Promise<string | undefined> {
  // node:dgram (and node:https below) load only in the modes that use them: not on the way to a standalone answer.
  const { createSocket } = await import('node:dgram');
  return new Promise((resolve) => {
    let host: string;
    let port: number;
    try {
      const u = new URL(url);
      host = u.hostname.replace(/^\[|\]$/g, '');
      port = Number(u.port) || (u.protocol === 'https:' ? 443 : 80);
    } catch {
      resolve(undefined);
      return;
    }
    if (!isIP(host)) {
      resolve(undefined);
      return;
    }
    const sock = createSocket(isIP(host) === 6 ? 'udp6' : 'udp4');
    const done = (v: string | undefined) => {
      try {
        sock.close();
      } catch {
        // already closed
      }
      resolve(v);
    };
    sock.on('error', () => done(undefined));
    sock.connect(port, host, () => {
      try {
        done(sock.address().address);
      } catch {
        done(undefined);
      }
    });
  });
}

function urlHost(host: string): string {
  return isIP(host) === 6 ? `[${host}]` : host;
}

async function listen(server: Server | HttpsServer, host: string, port: number, log: Log): Promise<AddressInfo> {
  const attempt = (h: string) => new Promise<AddressInfo>((resolve, reject) => {
    const onError = (e: Error) => reject(e);
    server.once('error', onError);
    server.listen(port, h, () => {
      server.off('error', onError);
      resolve(server.address() as AddressInfo);
    });
  });
  try {
    return await attempt(host);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (host === '::' && (code === 'EAFNOSUPPORT' || code === 'EADDRNOTAVAIL')) {
      log.warn(`IPv6 is not available (${code}); listening on 0.0.0.0 instead of ::`);
      return attempt('0.0.0.0');
    }
    throw e;
  }
}

/** agent/memory.ts: memory goes back to the kernel once the daemon idles, where agent_memory.node loads. */
function startMemoryGiveBack(log: { debug(msg: string): void }, activity: () => number): MemoryGiveBack | null {
  const loaded = loadMemoryAddon();
  if (!loaded.ok) {
    log.debug(`the idle daemon keeps its memory: ${loaded.error}`);
    return null;
  }
  return giveBackFreeMemory(loaded.addon, { activity, log: (m) => log.debug(m) });
}

export async function serve(opts: ServeOptions): Promise<RunningAgent> {
  const { config } = opts.loaded;
  const logger = opts.logger ?? createLogger({ level: config.log_level, ...(opts.stdout ? { stream: opts.stdout } : {}) });
  const log = logger.log;
  const main = log.child({ module: 'serve' });
  for (const w of opts.loaded.warnings) main.warn(w);
  // Before any secret arrives over the API: a crash must not write one into a core file.
  void makeNonDumpable(main);

  // The change journal must be writable before anything is served: a daemon
  // that listens and then cannot journal would accept set_bmc_credentials only
  // to fail it (or, before makeDir, spin in Node's recursive mkdir on /proc).
  // Awaited before the backend's plan is read; its fsync runs beside the planning.
  const stateDirChecked = checkStateDir(config.state_dir);
  stateDirChecked.catch(() => undefined);

  const tokens = new AgentTokenStore(log.child({ module: 'token' }), logger.redactor);
  if (opts.loaded.agentToken) tokens.setConfigured(opts.loaded.agentToken.value, opts.loaded.agentToken.source === 'kernel-cmdline' ? 'kernel-cmdline' : opts.loaded.agentToken.source);

  const conductorMode = !config.standalone && (config.api_url?.length ?? 0) > 0;
  // A node serving a conductor never lets a simulation stand in for its BMC: without a device
  // it has no BMC, and says so (the simulated fallback is for a laptop; ipmi-kcs/select.ts).
  const backendExtras: BackendExtras = { fallback: conductorMode ? 'none' : 'simulated', ...(opts.ipmiDevices ? { deviceCandidates: opts.ipmiDevices } : {}) };
  // Decided before listening, so that the very first /v1/status names the backend: a stat per
  // device path, and loading the addon when one exists (a few ms), started now beside the rest.
  const planning = chooseBackendFromConfig(config, backendExtras).then((plan) => ({ plan }), (err: Error) => ({ err }));
  const status = new StatusDocument(AGENT_VERSION);
  /** Why there is no BMC (NoBmcError), while there is none. */
  let noBmc: Error | undefined;

  // The API listens before the backend is open (opening /dev/ipmi0 or a VM-codec
  // socket, and recovering an interrupted change, take time the API need not wait
  // for); a command that arrives meanwhile waits for the engine.
  let service: CredentialService | undefined;
  const openEngine = async (plan: BackendPlan) => {
    const [opened, { CredentialService }] = await Promise.all([
      (opts.openBackend ?? openBackendFromConfig)(config, log.child({ module: 'backend' }), { ...backendExtras, plan }),
      import('../service/credential-service.js'),
    ]);
    const svc = new CredentialService({ transport: opened.transport, logger: log.child({ module: 'service' }), stateDir: config.state_dir, ...ipmiCallOptions(config) });
    try {
      const report = await svc.recover();
      if (report) main.warn(`an interrupted credential change from pid ${report.pid} on user ${report.userId} was found: ${report.outcome}`);
    } catch (e) {
      main.error(`recovering an interrupted credential change failed: ${(e as Error).message}`);
    }
    service = svc;
    return { ...opened, service: svc };
  };
  type Engine = Awaited<ReturnType<typeof openEngine>>;
  let engine: Engine | undefined;
  /** Resolves with null when there is no BMC (noBmc says why); opened beside the app, after the API listens. */
  let backendReady: Promise<Engine | null> = Promise.resolve(null);
  let lookingAgain: Promise<Engine | null> | null = null;
  /**
   * The engine, or NoBmcError. Without a BMC at start, each call looks for the
   * device again: ipmi_si, and SSIF more so, may create it after the agent started.
   */
  const currentEngine = async (): Promise<Engine> => {
    const first = await backendReady;
    if (first) return first;
    if (engine) return engine;
    lookingAgain ??= (async () => {
      try {
        const opened = await openEngine(await chooseBackendFromConfig(config, backendExtras));
        engine = opened;
        noBmc = undefined;
        status.setBackend(opened.selection);
        main.info(`an IPMI device appeared: backend ${opened.selection.kind} (${opened.selection.description}); bmc.* commands and set_bmc_credentials run from now on`);
        return opened;
      } catch (err) {
        noBmc = err as Error;
        status.setBackend(noBmcStatus(noBmc));
        return null;
      } finally {
        lookingAgain = null;
      }
    })();
    const late = await lookingAgain;
    if (late) return late;
    throw noBmc!;
  };
  // Every result names the backend that produced it; a simulated one says so in its warnings.
  const credentials: CredentialsPort = {
    getInfo: async () => {
      const e = await currentEngine();
      return stampBackend(await e.service.getInfo(), e.selection.kind);
    },
    setCredentials: async (req) => {
      const e = await currentEngine();
      return stampBackend(await e.service.setCredentials(req), e.selection.kind);
    },
    get busy() {
      return service?.busy ?? false;
    },
  };
  let advertiseHost = config.advertise_host;
  if (!advertiseHost && conductorMode) {
    for (const u of config.api_url ?? []) {
      advertiseHost = await sourceAddressFor(u);
      if (advertiseHost) break;
    }
    if (advertiseHost) main.info(`advertising ${advertiseHost} (the source address of the route to the Ironic API)`);
  }

  let tlsMinVersion: string = config.tls_min_version;
  let tls: TlsSetup = { mode: 'none' };
  // TLS code (and key generation) is loaded only when TLS is on.
  const tlsMod = config.listen_tls || (conductorMode && config.enable_auto_tls) ? await import('./tls/server-tls.js') : null;
  if (config.listen_tls && tlsMod) {
    const { operatorTls } = tlsMod;
    tls = operatorTls(config.tls_cert_file!, config.tls_key_file!, tlsMinVersion);
  } else if (conductorMode && config.enable_auto_tls && tlsMod) {
    if (advertiseHost) tls = tlsMod.autoTls(advertiseHost, tlsMinVersion);
    else main.warn('auto-TLS is off: the advertised address is unknown (set --advertise-host); serving plain HTTP');
  }

  // Loaded on first use: the inventory is needed for lookup, not for answering the API.
  const collectInventory = opts.collectInventory ?? (async (): Promise<Inventory> => {
    const m = await import('./inventory/index.js');
    return m.collectInventory({
      // No BMC, or a simulated one whose address is made up: the inventory reports none (IPA's null).
      readBmcLan: async () => {
        let e: Engine;
        try {
          e = await currentEngine();
        } catch {
          return null;
        }
        return e.selection.kind === 'simulated' ? null : (await e.service.getInfo()).lan ?? null;
      },
      logger: log.child({ module: 'inventory' }),
    });
  });

  const loadApi = async (): Promise<AgentApi> => {
    const [{ createApp }, { defaultLogCollector }, { winstonSink }] = await Promise.all([import('./api/app.js'), import('./api/commands/system.js'), import('./log-winston.js')]);
    // From here on the daemon's lines go through winston (logger.ts useSink says why only now).
    logger.useSink(winstonSink);
    return createApp({
      credentials,
      tokens,
      log,
      redactor: logger.redactor,
      version: AGENT_VERSION,
      config,
      status,
      collectLogs: defaultLogCollector({ agentLog: () => logger.ring.text(), redact: (s) => logger.redactor.redact(s) }),
      inventory: { collect: collectInventory },
      ...(tls.sealingKey ? { sealingKey: tls.sealingKey } : {}),
    });
  };

  await stateDirChecked;
  const planned = await planning;
  if ('plan' in planned) {
    status.setBackend(planned.plan);
    // One short line, before "API listening" and in colour on a terminal: whoever reads the
    // start of the log must not miss that nothing this agent does reaches a real BMC.
    if (planned.plan.warning) {
      main.warn(`SIMULATED BMC: no IPMI device found; nothing this agent does reaches a real BMC`, { highlight: true });
      backendExtras.warningShown = true;
    }
  } else if (planned.err instanceof NoBmcError) {
    noBmc = planned.err;
    const info = noBmcStatus(noBmc);
    status.setBackend(info);
    main.warn(info.warning!);
  } else {
    main.error(`cannot open the IPMI backend: ${planned.err.message}`);
    throw planned.err;
  }

  // Status is answered from the first moment; the app takes over once loaded (startup.ts).
  const front = startupFront(status, log.child({ module: 'http' }));
  const server = tls.options ? (await import('node:https')).createServer(tls.options, front.handle) : createHttpServer(front.handle);
  server.keepAliveTimeout = 65_000;
  const connections = guardConnections(server as Server, defaultConnectionLimits(), (line) => main.warn(line));
  const addr = await listen(server, config.listen_host, config.listen_port, main);
  const scheme = tls.mode === 'none' ? 'http' : 'https';
  const url = `${scheme}://${urlHost(addr.address === '::' || addr.address === '0.0.0.0' ? '127.0.0.1' : addr.address)}:${addr.port}`;
  main.info(`API listening on ${scheme}://${urlHost(addr.address)}:${addr.port} (TLS: ${tls.mode}${tls.options ? `, minimum ${tls.options.minVersion}` : ''})`);
  // The engine and the app load a moment after listening, or at once when a request needs them (startup.ts).
  front.listening();
  await front.loadNow;
  if ('plan' in planned) {
    backendReady = openEngine(planned.plan).then((e) => (engine = e));
    backendReady.catch(() => undefined);
  }
  let api: AgentApi;
  try {
    api = await loadApi();
  } catch (e) {
    main.error(`cannot load the API: ${(e as Error).message}`);
    front.failed();
    server.closeAllConnections?.();
    await new Promise<void>((r) => server.close(() => r()));
    // The engine was started beside the app: do not leave the device open.
    await backendReady.then((b) => b?.transport.close(), () => undefined).catch(() => undefined);
    throw e;
  }
  front.ready(api.app.callback());

  let opened: Engine | null;
  try {
    opened = await backendReady;
  } catch (e) {
    main.error(`cannot open the IPMI backend: ${(e as Error).message}`);
    server.closeAllConnections?.();
    await new Promise<void>((r) => server.close(() => r()));
    throw e;
  }
  if (opened) {
    api.setBackend(opened.selection);
  }
  const memory = startMemoryGiveBack(main, () => front.received);

  const advertisePort = opts.loaded.sources.advertise_port === 'default' && config.listen_port === 0 ? addr.port : config.advertise_port;
  const advertiseUrl = () => `${scheme}://${urlHost(advertiseHost ?? '127.0.0.1')}:${advertisePort}`;

  let fatal: Error | undefined;
  let resolveStopped!: () => void;
  const stopped = new Promise<void>((r) => (resolveStopped = r));
  let conductor: { stop(): Promise<void>; forceHeartbeat(): void } | null = null;
  if (conductorMode) {
    let mod: IronicClientModule | null = null;
    try {
      mod = await (opts.loadIronicClient ?? (() => import('./ironic/index.js')))();
    } catch (e) {
      main.error(`the conductor client could not be loaded (${(e as Error).message}); serving the API only`);
    }
    if (mod) {
      conductor = await mod.startIronicClient({
        config,
        logger: log,
        tokens,
        advertiseUrl,
        getVerifyCa: () => tls.verifyCa,
        collectInventory,
        applyDiscoveredCredentials: async (creds) => {
          logger.redactor.register(creds.password);
          const { toSetCredentialsArgs, runSetCredentials } = await import('./api/commands/bmc.js');
          // The extras a discovery answer carries are checked by the credential contract like any params.
          return runSetCredentials(credentials, toSetCredentialsArgs(creds, logger.redactor));
        },
        onNodeInfo: (_node, lookupConfig) => {
          if (!tlsMod) return;
          const raised = tlsMod.raiseMinVersion(tlsMinVersion, lookupConfig?.tls_min_version);
          if (raised !== tlsMinVersion && tls.options && 'setSecureContext' in server) {
            tlsMinVersion = raised;
            tls.options.minVersion = tlsMod.tlsVersion(raised);
            (server as HttpsServer).setSecureContext(tls.options);
            main.info(`TLS minimum raised to ${tls.options.minVersion} as the conductor asks`);
          }
        },
        onFatal: (err) => {
          if (tokens.lockdownReason) {
            // Locked down (IPA stops serving in this case): stay up refusing commands
            // rather than exit and be restarted into the same "******" answer forever.
            main.error(`conductor client stopped; the agent stays locked down: ${err.message}`);
            return;
          }
          main.error(`conductor client gave up: ${err.message}`);
          fatal = err;
          resolveStopped();
        },
      });
      api.hooks.onAsyncDone = () => conductor?.forceHeartbeat();
    }
  } else {
    main.info(config.standalone ? 'standalone: no lookup or heartbeat' : 'no --api-url: serving the API only (no lookup or heartbeat)');
  }

  let closing: Promise<void> | null = null;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      await conductor?.stop().catch(() => undefined);
      server.closeIdleConnections?.();
      await new Promise<void>((r) => {
        server.close(() => r());
        setTimeout(() => {
          server.closeAllConnections?.();
        }, 2000).unref();
      });
      await lookingAgain?.catch(() => undefined);
      await engine?.transport.close().catch(() => undefined);
      memory?.stop();
      resolveStopped();
    })();
    return closing;
  };

  return {
    url, port: addr.port, api, tokens, logger, tls, connections, stopped, close,
    get selection() {
      return engine?.selection;
    },
    get credentials() {
      return service;
    },
    get fatal() {
      return fatal;
    },
  };
}
