/**
 * Ironic API microversions the agent cares about (ironic/api/controllers/v1/versions.py,
 * mirrored by IPA's ironic_api_client.py).
 */
export interface ApiVersion {
  readonly major: number;
  readonly minor: number;
}

/** Lookup and heartbeat exist (below: 404). */
export const V_RAMDISK_ENDPOINTS: ApiVersion = { major: 1, minor: 22 };
/** Heartbeat `agent_version`. */
export const V_AGENT_VERSION: ApiVersion = { major: 1, minor: 36 };
/** Lookup hands out `config.agent_token`; heartbeat carries `agent_token`. */
export const V_AGENT_TOKEN: ApiVersion = { major: 1, minor: 62 };
/** Heartbeat `agent_verify_ca` (auto-TLS certificate). The agent never asks for more than this. */
export const V_AGENT_VERIFY_CA: ApiVersion = { major: 1, minor: 68 };
/** `POST /v1/continue_inspection` exists (built-in inspection, replaces ironic-inspector's /v1/continue). */
export const V_CONTINUE_INSPECTION: ApiVersion = { major: 1, minor: 84 };

export function parseApiVersion(text: unknown): ApiVersion | undefined {
  if (typeof text !== 'string') return undefined;
  const m = /^(\d+)\.(\d+)$/.exec(text.trim());
  if (!m) return undefined;
  return { major: Number(m[1]), minor: Number(m[2]) };
}

export function compareVersions(a: ApiVersion, b: ApiVersion): number {
  return a.major !== b.major ? a.major - b.major : a.minor - b.minor;
}

export function minVersion(a: ApiVersion, b: ApiVersion): ApiVersion {
  return compareVersions(a, b) <= 0 ? a : b;
}

export function atLeast(v: ApiVersion, min: ApiVersion): boolean {
  return compareVersions(v, min) >= 0;
}

export function formatVersion(v: ApiVersion): string {
  return `${v.major}.${v.minor}`;
}

/**
 * The server's maximum version from `GET /`: `default_version.version`, else the
 * highest `versions[].version` (Ironic's root document, api/controllers/root.py).
 */
export function maxVersionFromRoot(doc: unknown): ApiVersion | undefined {
  if (doc === null || typeof doc !== 'object') return undefined;
  const d = doc as { default_version?: { version?: unknown }; versions?: Array<{ version?: unknown }> };
  const dv = parseApiVersion(d.default_version?.version);
  if (dv) return dv;
  let best: ApiVersion | undefined;
  for (const v of Array.isArray(d.versions) ? d.versions : []) {
    const p = parseApiVersion(v?.version);
    if (p && (!best || compareVersions(p, best) > 0)) best = p;
  }
  return best;
}
