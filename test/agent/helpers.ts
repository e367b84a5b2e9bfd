/**
 * Helpers for the agent's HTTP tests: an app served on a loopback port picked
 * by the OS, a small JSON request function over node:http, and a credential
 * port that records what it was asked (for the tests that need no BMC).
 */
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createApp, type AgentApi, type AppDeps } from '../../agent/api/app.js';
import type { CredentialsPort, SetCredentialsArgs } from '../../agent/api/ports.js';
import { createLogger, LineCollector, type AgentLogger } from '../../agent/logger.js';
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

/** Records every request; `result`/`fail` script the answer; `gate` holds a call until released. */
export class RecordingCredentials implements CredentialsPort {
  readonly calls: SetCredentialsArgs[] = [];
  readonly revealed: string[] = [];
  infoCalls = 0;
  result: unknown = { user_id: 3, username: 'ironic', channels: [1], verified: ['password-test', 'user-name'], bmc_address: '10.0.0.9' };
  fail: Error | null = null;
  gate: Promise<void> | null = null;
  async getInfo(): Promise<unknown> {
    this.infoCalls++;
    return { device_id: 0x20, ipmi_version: '2.0', lan_channels: [1], users: [{ id: 2, name: 'admin', enabled: true }] };
  }
  async setCredentials(req: SetCredentialsArgs): Promise<unknown> {
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
