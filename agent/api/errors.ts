/**
 * The API's one error type. The error middleware turns it into IPA's
 * WSME-style body `{"faultcode": "Client"|"Server", "faultstring": ...}`
 * (research: IPA `api/app.py`, §1.3); `faultcode` is `Server` for status >= 500.
 * Faultstrings name the offending field but never echo a submitted value.
 */
export class ApiError extends Error {
  readonly status: number;
  constructor(status: number, faultstring: string) {
    super(faultstring);
    this.name = 'ApiError';
    this.status = status;
  }
  get faultcode(): 'Client' | 'Server' {
    return this.status >= 500 ? 'Server' : 'Client';
  }
}

// The rows of IPA's error table, worded as IPA words them where Ironic reads the text.
export const tokenInvalid = (): ApiError => new ApiError(401, 'Token invalid.');
export const agentBusy = (name: string): ApiError => new ApiError(409, `Agent is busy: executing command ${name}`);
export const invalidEnvelope = (why: string): ApiError => new ApiError(400, `Missing or invalid name or params: ${why}`);
export const badCommandName = (): ApiError => new ApiError(400, 'Invalid command: Command name must be of the form <extension>.<name>');
export const unknownExtension = (ext: string): ApiError => new ApiError(404, `Not found: Extension with id ${ext} not found.`);
export const unknownCommand = (name: string): ApiError => new ApiError(400, `Invalid command: Unknown command: ${name}`);
export const invalidParams = (name: string, why: string): ApiError => new ApiError(400, `Invalid command parameters for ${name}: ${why}`);
export const commandNotFound = (id: string): ApiError => new ApiError(404, `Not found: Command Result with id ${id} not found.`);
export const routeNotFound = (): ApiError =>
  new ApiError(404, 'Not Found: The requested URL was not found on the server. If you entered the URL manually please check your spelling and try again.');
export const methodNotAllowed = (allowed: string): ApiError => new ApiError(405, `Method Not Allowed: The method is not allowed for the requested URL (allowed: ${allowed}).`);

/** IPA's serialized RESTError inside a FAILED command record. */
export interface CommandError {
  type: string;
  code: number;
  message: string;
  details: string;
  /** Machine-readable reason (our addition; Ironic ignores unknown keys). */
  reason?: string;
}
