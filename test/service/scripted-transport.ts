/**
 * A transport that answers from a script: each send() takes the next entry
 * (a response, or an error to reject with). For unit tests of retry logic.
 */
import { BaseTransport } from '../../ipmi-kcs/base-transport.js';
import { KCS_LIMITS, type IpmiResponse, type NormalizedRequest } from '../../ipmi-kcs/transport.js';

export type Scripted = IpmiResponse | Error | ((req: NormalizedRequest, timeoutMs: number) => Promise<IpmiResponse>);

export class ScriptedTransport extends BaseTransport {
  readonly kind = 'simulated' as const;
  readonly description = 'scripted';
  readonly sent: Array<{ netFn: number; cmd: number; data: number[]; timeoutMs: number }> = [];
  #script: Scripted[];

  constructor(script: Scripted[]) {
    super(KCS_LIMITS);
    this.#script = [...script];
  }

  protected async exchange(req: NormalizedRequest, timeoutMs: number): Promise<IpmiResponse> {
    this.sent.push({ netFn: req.netFn, cmd: req.cmd, data: Array.from(req.data), timeoutMs });
    const next = this.#script.shift();
    if (next === undefined) throw new Error('script exhausted');
    if (next instanceof Error) throw next;
    if (typeof next === 'function') return next(req, timeoutMs);
    return next;
  }

  protected async shutdown(): Promise<void> {}
}

export const rsp = (completionCode: number, data: number[] = [], truncated = false): IpmiResponse =>
  (truncated ? { completionCode, data: Uint8Array.from(data), truncated } : { completionCode, data: Uint8Array.from(data) });
