/**
 * The one error type service/ raises. `code` is stable (the agent maps it to an
 * HTTP status / IPA fault); `details` is structured and secret-free: it names
 * commands, completion codes, user ids and channels, never password bytes.
 */
export type ServiceErrorCode =
  /** Another change is in progress (in this process or another one sharing the state directory). */
  | 'BUSY'
  /** The request is malformed or cannot be honoured as asked; nothing was written. */
  | 'INVALID_REQUEST'
  /** No empty, non-fixed user slot is left; nothing was written. */
  | 'NO_FREE_SLOT'
  /** The change would disable, rename or overwrite the last enabled administrator; nothing was written. */
  | 'LOCKOUT_REFUSED'
  /** The BMC lacks something the request needs (e.g. 20-byte passwords on IPMI 1.5); nothing was written. */
  | 'UNSUPPORTED'
  /** The BMC failed a read, or refused the first write; nothing was changed. */
  | 'BMC_ERROR'
  /** A write or the verification failed; the slot was restored to its previous state. */
  | 'ROLLED_BACK'
  /** A write failed and restoring the previous state failed too; the journal is kept for the next start. */
  | 'ROLLBACK_FAILED'
  /** An interrupted change from an earlier run could not be rolled back; no new change is accepted. */
  | 'INTERRUPTED_CHANGE';

export class ServiceError extends Error {
  readonly code: ServiceErrorCode;
  readonly field: string | undefined;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ServiceErrorCode, message: string, opts: { field?: string; details?: Record<string, unknown>; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'ServiceError';
    this.code = code;
    this.field = opts.field;
    this.details = opts.details;
  }

  toJSON(): Record<string, unknown> {
    return { name: this.name, code: this.code, message: this.message, field: this.field, details: this.details };
  }
}
