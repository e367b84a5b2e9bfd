/**
 * A {@link FetchLike} on node:http/https, used instead of the global fetch when the
 * conductor's TLS must be verified against an operator CA (`cafile`) or not at all
 * (`ipa-insecure`): Node 20's global fetch takes no per-request TLS options.
 */
import http from 'node:http';
import https from 'node:https';
import type { FetchInitLike, FetchLike, FetchResponseLike } from './types.js';

export interface NodeFetchTlsOptions {
  /** PEM CA bundle to trust instead of the system store. */
  ca?: string | Buffer;
  /** Skip certificate verification (`ipa-insecure`). */
  insecure?: boolean;
}

const MAX_BODY = 8 * 1024 * 1024;

export function createNodeFetch(tls: NodeFetchTlsOptions = {}): FetchLike {
  return (url: string, init: FetchInitLike): Promise<FetchResponseLike> =>
    new Promise((resolve, reject) => {
      const u = new URL(url);
      const isHttps = u.protocol === 'https:';
      const mod = isHttps ? https : http;
      const headers: Record<string, string> = { ...(init.headers ?? {}) };
      if (init.body !== undefined) headers['Content-Length'] = String(Buffer.byteLength(init.body));
      const req = mod.request(
        u,
        {
          method: init.method ?? 'GET',
          headers,
          signal: init.signal,
          ...(isHttps ? { rejectUnauthorized: !tls.insecure, ...(tls.ca ? { ca: tls.ca } : {}) } : {}),
        },
        (res) => {
          const chunks: Buffer[] = [];
          let size = 0;
          res.on('data', (c: Buffer) => {
            size += c.length;
            if (size > MAX_BODY) {
              res.destroy(new Error(`response body larger than ${MAX_BODY} bytes`));
              return;
            }
            chunks.push(c);
          });
          res.on('error', reject);
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            resolve({
              status: res.statusCode ?? 0,
              headers: { get: (name: string) => {
                const v = res.headers[name.toLowerCase()];
                return v === undefined ? null : Array.isArray(v) ? v.join(', ') : v;
              } },
              text: async () => text,
            });
          });
        },
      );
      req.on('error', reject);
      req.end(init.body);
    });
}
