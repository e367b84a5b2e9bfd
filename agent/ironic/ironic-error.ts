/**
 * Ironic wraps API errors twice (ironic/api/middleware/parsable_error.py):
 *   {"error_message": "{\"faultcode\": \"Client\", \"faultstring\": \"...\", \"debuginfo\": null}"}
 * `error_message` is a JSON *string*. Inspector answers {"error": {"message": ...}}, Barbican
 * {"title", "description"}. This turns any of them into one readable line.
 */
const MAX_LEN = 500;

function pick(obj: unknown): string | undefined {
  if (obj === null || typeof obj !== 'object') return undefined;
  const o = obj as Record<string, unknown>;
  if (typeof o.faultstring === 'string') return o.faultstring;
  if (typeof o.error_message === 'string') {
    const inner = parseJson(o.error_message);
    return pick(inner) ?? o.error_message;
  }
  if (o.error_message !== undefined) return pick(o.error_message);
  if (o.error !== undefined) return typeof o.error === 'string' ? o.error : pick(o.error);
  if (typeof o.message === 'string') return o.message;
  if (typeof o.title === 'string') return typeof o.description === 'string' ? `${o.title}: ${o.description}` : o.title;
  return undefined;
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function clip(s: string): string {
  const one = s.replace(/\s+/g, ' ').trim();
  return one.length > MAX_LEN ? `${one.slice(0, MAX_LEN)}…` : one;
}

/** The readable message inside an Ironic (or inspector/Barbican) error body; falls back to the clipped body. */
export function unwrapIronicError(body: string): string {
  const parsed = parseJson(body);
  const msg = pick(parsed);
  if (msg !== undefined) return clip(msg);
  return clip(body) || '(empty body)';
}

/** `HTTP <status>: <message>` for log lines and errors. */
export function describeHttpError(status: number, body: string): string {
  return `HTTP ${status}: ${unwrapIronicError(body)}`;
}
