/**
 * Helpers for the agent's HTTP tests: an app served on a loopback port picked
 * by the OS, a small JSON request function over node:http, and a credential
 * port that records what it was asked (for the tests that need no BMC).
 */
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createApp, type AgentApi, type AppDeps } from '../../agent/api/app.js';
import type { CredentialsPort, SetCredentialsArgs, StampedResult } from '../../agent/api/ports.js';
import type { BmcInfo, SetCredentialsResult } from '../../service/types.js';
import { stampBackend } from '../../agent/backend.js';
import { createLogger, type AgentLogger } from '../../agent/logger.js';
import { LineCollector } from '../../agent/log-streams.js';
import { AgentTokenStore } from '../../agent/token.js';
import { captureLines } from '../helpers/secrets.js';

export interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  json: any; // eslint-disable-line @typescript-eslint/no-explicit-any
}

export function httpRequest(base: string, method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Reply> {
  const payload = body === undefined ? undefined : typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = request(base + path, {
      method,
      headers: { ...(payload !== undefined ? { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(payload)) } : {}), ...headers },
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json: unknown;
        try {
          json = text ? JSON.parse(text) : undefined;
        } catch {
          json = undefined;
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
      });
    });
    req.on('error', reject);
    if (payload !== undefined) req.write(payload);
    req.end();
  });
}

/** A change's result as the engine answers it (stamped as a non-simulated backend), for tests that need no BMC. */
export function sampleSetResult(over: Partial<SetCredentialsResult> = {}): StampedResult<SetCredentialsResult> {
  return {
    backend: 'native', userId: 3, username: 'ironic', privilege: 'administrator', channels: [1], passwordSize: 16, slot: 'empty', changed: true,
    passwordBefore: 'empty-slot', actions: ['wrote: user 3 name "ironic"'],
    verified: { passwordTest: 'passed', name: true, enabled: true, enabledSource: 'status', access: { 1: true } },
    warnings: [], bmc: { ipmiVersion: '2.0', manufacturerId: 7154, productId: 512, firmware: '1.00', lanChannel: 1, address: '10.0.0.9' }, requests: 30,
    ...over,
  };
}

/** The BMC's info as the engine answers it (stamped as a non-simulated backend). */
export function sampleInfo(): StampedResult<BmcInfo> {
  return {
    backend: 'native',
    device: { deviceId: 0x20, deviceRevision: 1, firmware: '1.00', ipmiVersion: '2.0', manufacturerId: 7154, productId: 512, updateInProgress: false },
    ipmiVersion: '2.0', lanChannels: [], maxUsers: 16, fixedNameUsers: 1, enabledUsers: 1,
    users: [{ id: 2, name: 'admin', enabled: true, enabledSource: 'status', fixedName: false, access: {} }], lan: { channel: 1, address: '10.0.0.9' },
  };
}

/** A real engine as the daemon hands it to the API: every result stamped with the backend (agent/serve.ts). */
export function stampedEngine(engine: { getInfo(): Promise<BmcInfo>; setCredentials(req: SetCredentialsArgs): Promise<SetCredentialsResult> }, backend: string): CredentialsPort {
  return {
    getInfo: async () => stampBackend(await engine.getInfo(), backend),
    setCredentials: async (req) => stampBackend(await engine.setCredentials(req), backend),
  };
}

/** Records every request; `result`/`fail` script the answer; `gate` holds a call until released. */
export class RecordingCredentials implements CredentialsPort {
  readonly calls: SetCredentialsArgs[] = [];
  readonly revealed: string[] = [];
  infoCalls = 0;
  result: StampedResult<SetCredentialsResult> = sampleSetResult();
  fail: Error | null = null;
  gate: Promise<void> | null = null;
  async getInfo(): Promise<StampedResult<BmcInfo>> {
    this.infoCalls++;
    return sampleInfo();
  }
  async setCredentials(req: SetCredentialsArgs): Promise<StampedResult<SetCredentialsResult>> {
    this.calls.push(req);
    if (req.password) this.revealed.push(req.password.reveal());
    if (this.gate) await this.gate;
    if (this.fail) throw this.fail;
    return this.result;
  }
}

export interface TestAgent {
  base: string;
  api: AgentApi;
  server: Server;
  tokens: AgentTokenStore;
  logger: AgentLogger;
  lines: LineCollector;
  credentials: CredentialsPort;
  request(method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<Reply>;
  close(): Promise<void>;
}

export async function startTestAgent(opts: {
  credentials?: CredentialsPort;
  token?: string;
  config?: Partial<AppDeps['config']>;
  deps?: Partial<AppDeps>;
  /** Pretend the caller is this address (for the loopback-only rule). */
  clientAddress?: string;
  name?: string;
} = {}): Promise<TestAgent> {
  const lines = new LineCollector();
  const logger = createLogger({ stream: lines, format: 'json', level: 'debug' });
  const tokens = new AgentTokenStore(logger.log.child({ module: 'token' }), logger.redactor);
  if (opts.token) tokens.setConfigured(opts.token, 'config');
  const credentials = opts.credentials ?? new RecordingCredentials();
  const api = createApp({
    credentials,
    tokens,
    log: logger.log,
    redactor: logger.redactor,
    version: '0.1.0-test',
    config: { require_token_for_reads: false, allow_remote_commands: false, max_command_records: 100, max_body_bytes: 64 * 1024, ...opts.config },
    ...(opts.clientAddress ? { clientAddress: () => opts.clientAddress } : {}),
    ...opts.deps,
  });
  const server = createServer(api.app.callback());
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    base, api, server, tokens, logger, lines, credentials,
    request: (m, p, b, h) => httpRequest(base, m, p, b, h),
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      captureLines(`agent-api-${opts.name ?? 'test'}`, lines.lines);
    },
  };
}

/** Polls a record until it is no longer RUNNING. */
export async function waitDone(agent: TestAgent, id: string): Promise<Reply> {
  return agent.request('GET', `/v1/commands/${id}?wait=true`);
}
