/**
 * What the HTTP layer needs from the rest of the daemon, as interfaces: the
 * credential engine (service/), the inventory collector, system hooks. The
 * daemon passes the real ones (agent/serve.ts); route tests pass their own.
 */
import type { BmcInfo, PrivilegeName, SetCredentialsRequest, SetCredentialsResult } from '../../service/types.js';
import type { Inventory } from '../inventory/types.js';

export type { PrivilegeName };
export const PRIVILEGES: readonly PrivilegeName[] = ['administrator', 'operator', 'user'];

/** The engine's request, as the API builds it from a command's params. */
export type SetCredentialsArgs = SetCredentialsRequest;

/**
 * An engine result stamped with the backend that produced it (agent/backend.ts):
 * `backend` first, and on the simulated BMC its note first in `warnings`.
 */
export type StampedResult<T> = T & { backend: string; warnings?: string[] };

/** The credential engine (service/ CredentialService), its results stamped with the backend (agent/serve.ts). */
export interface CredentialsPort {
  getInfo(): Promise<StampedResult<BmcInfo>>;
  setCredentials(req: SetCredentialsArgs): Promise<StampedResult<SetCredentialsResult>>;
  readonly busy?: boolean;
}

/** The inventory collector (agent/inventory/): IPA's inventory, as poll.get_hardware_info and lookup carry it. */
export interface InventoryPort {
  collect(): Promise<Inventory>;
}

/** A log file handed to the conductor by log.collect_system_logs. */
export interface LogFile {
  name: string;
  text: string;
}

/** The backend chosen at start, shown by GET /v1/status. */
export interface BackendInfo {
  kind: string;
  reason: string;
  warning?: string;
  description?: string;
}
