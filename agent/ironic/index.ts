/**
 * Entry point the CLI loads (dynamic import) when api_url is set and the agent is
 * not --standalone: starts lookup/heartbeat in the background and returns at once.
 */
import { VERSION } from '../../service/version.js';
import { IronicClient, type IronicClientDeps } from './client.js';
import { systemClock } from './clock.js';
import { createNodeFetch } from './node-fetch.js';
import type { IronicClientLogger, FetchLike } from './types.js';

export { IronicClient, lookupMacs } from './client.js';
export { unwrapIronicError } from './ironic-error.js';
export type * from './types.js';

export interface StartIronicClientDeps
  extends Omit<IronicClientDeps, 'fetch' | 'clock' | 'random' | 'agentVersion' | 'logger'>,
    Partial<Pick<IronicClientDeps, 'fetch' | 'clock' | 'random' | 'agentVersion'>> {
  logger: IronicClientLogger & { child?(meta: object): IronicClientLogger };
}

export interface IronicClientHandle {
  stop(): Promise<void>;
  /** An async command ended: heartbeat soon (at most one per 5 s) so Ironic notices. */
  forceHeartbeat(): void;
  /** The node's UUID once lookup found it. */
  readonly nodeUuid: string | undefined;
  readonly client: IronicClient;
}

/** Global fetch, unless the conductor's TLS needs options it cannot take (`insecure`). */
export function defaultFetch(config: IronicClientDeps['config']): FetchLike {
  const https = (config.api_url ?? []).some((u) => u.startsWith('https:')) ||
    (config.inspection_callback_url ?? '').startsWith('https:');
  if (https && config.insecure) return createNodeFetch({ insecure: true });
  return fetch as unknown as FetchLike;
}

export async function startIronicClient(deps: StartIronicClientDeps): Promise<IronicClientHandle> {
  const logger = deps.logger.child ? deps.logger.child({ module: 'conductor' }) : deps.logger;
  const client = new IronicClient({
    ...deps,
    logger,
    fetch: deps.fetch ?? defaultFetch(deps.config),
    clock: deps.clock ?? systemClock,
    random: deps.random ?? Math.random,
    // agent_version in heartbeats: service/version.ts, the one place the version is read.
    agentVersion: deps.agentVersion ?? VERSION,
  });
  client.start();
  return {
    stop: () => client.stop(),
    forceHeartbeat: () => client.forceHeartbeat(),
    get nodeUuid() {
      return client.nodeUuid;
    },
    client,
  };
}
