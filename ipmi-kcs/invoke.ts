import { IpmiCompletionCodeError } from './errors.js';
import type { IpmiRequest, SendOptions, Transport } from './transport.js';

/**
 * Sends a request and returns its response data, throwing
 * {@link IpmiCompletionCodeError} for a non-zero completion code.
 * `what` names the command in the error ("Set User Name (user 3)").
 */
export async function invoke(transport: Transport, req: IpmiRequest, options?: SendOptions & { what?: string }): Promise<Uint8Array> {
  const rsp = await transport.send(req, options);
  if (rsp.completionCode !== 0) {
    throw new IpmiCompletionCodeError(req.netFn, req.cmd, rsp.completionCode, rsp.data, options?.what);
  }
  return rsp.data;
}
