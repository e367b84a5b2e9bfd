/** Small helpers shared by the simulated-backend tests. */
import type { Transport } from '../../ipmi-kcs/transport.js';
import { recordSecret } from '../helpers/secrets.js';

export const APP = 0x06;
export const TRANSPORT = 0x0c;

export interface Rsp {
  cc: number;
  data: number[];
  truncated?: boolean;
}

export async function call(t: Transport, cmd: number, data: number[] = [], netFn = APP, timeoutMs?: number): Promise<Rsp> {
  const r = await t.send({ netFn, cmd, data }, timeoutMs ? { timeoutMs } : {});
  return { cc: r.completionCode, data: [...r.data], ...(r.truncated ? { truncated: true } : {}) };
}

/** NUL-padded fixed-size field (user name, password). */
export function padded(text: string, size = 16): number[] {
  const b = [...Buffer.from(text, 'latin1')];
  return [...b, ...new Array<number>(size - b.length).fill(0)];
}

/** A password every profile accepts, including the strictest policy (recorded for the suite-wide leak check). */
export const STRONG = recordSecret('Kq7!mZ2#vR9$tW4x');
export const STRONG20 = recordSecret('Kq7!mZ2#vR9$tW4x_Pb8');

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
