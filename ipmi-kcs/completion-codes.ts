/**
 * IPMI completion codes.
 *
 * Generic codes: IPMI v2.0 §5.2, Table 5-2 "Completion Codes". Codes 0x01–0x7E
 * are OEM, 0x80–0xBE are command-specific (named per command below).
 */
export const CC = {
  OK: 0x00,
  NODE_BUSY: 0xc0,
  INVALID_COMMAND: 0xc1,
  INVALID_FOR_LUN: 0xc2,
  TIMEOUT: 0xc3,
  OUT_OF_SPACE: 0xc4,
  RESERVATION_CANCELLED: 0xc5,
  REQUEST_DATA_TRUNCATED: 0xc6,
  REQUEST_DATA_LENGTH_INVALID: 0xc7,
  REQUEST_DATA_FIELD_LENGTH_EXCEEDED: 0xc8,
  PARAMETER_OUT_OF_RANGE: 0xc9,
  CANNOT_RETURN_BYTES: 0xca,
  NOT_PRESENT: 0xcb,
  INVALID_DATA_FIELD: 0xcc,
  ILLEGAL_FOR_SENSOR: 0xcd,
  RESPONSE_NOT_PROVIDED: 0xce,
  DUPLICATE_REQUEST: 0xcf,
  SDR_UPDATE_MODE: 0xd0,
  FIRMWARE_UPDATE_MODE: 0xd1,
  INITIALIZATION_IN_PROGRESS: 0xd2,
  DESTINATION_UNAVAILABLE: 0xd3,
  INSUFFICIENT_PRIVILEGE: 0xd4,
  NOT_SUPPORTED_IN_PRESENT_STATE: 0xd5,
  SUBFUNCTION_DISABLED: 0xd6,
  UNSPECIFIED: 0xff,
} as const;

const GENERIC_NAMES: Record<number, string> = {
  0x00: 'Command completed normally',
  0xc0: 'Node busy',
  0xc1: 'Invalid command',
  0xc2: 'Command invalid for given LUN',
  0xc3: 'Timeout while processing command',
  0xc4: 'Out of space',
  0xc5: 'Reservation canceled or invalid reservation ID',
  0xc6: 'Request data truncated',
  0xc7: 'Request data length invalid',
  0xc8: 'Request data field length limit exceeded',
  0xc9: 'Parameter out of range',
  0xca: 'Cannot return number of requested data bytes',
  0xcb: 'Requested sensor, data, or record not present',
  0xcc: 'Invalid data field in request',
  0xcd: 'Command illegal for specified sensor or record type',
  0xce: 'Command response could not be provided',
  0xcf: 'Cannot execute duplicated request',
  0xd0: 'SDR repository in update mode',
  0xd1: 'Device in firmware update mode',
  0xd2: 'BMC initialization or initialization agent in progress',
  0xd3: 'Destination unavailable',
  0xd4: 'Insufficient privilege level',
  0xd5: 'Command not supported in present state',
  0xd6: 'Command sub-function has been disabled or is unavailable',
  0xff: 'Unspecified error',
};

/**
 * Command-specific completion codes (0x80–0xBE), keyed by `netFn:cmd` of the request.
 * Only the commands this agent sends are listed.
 */
const COMMAND_SPECIFIC: Record<string, Record<number, string>> = {
  // IPMI v2.0 §22.22 Set Channel Access, Table 22-21
  '6:64': { 0x82: 'Set not supported on selected channel', 0x83: 'Access mode not supported' },
  // §22.23 Get Channel Access
  '6:65': { 0x82: 'Command not supported for selected channel' },
  // §22.30 Set User Password, Table 22-33
  '6:71': { 0x80: 'Password test failed: password size correct, but password data does not match stored value', 0x81: 'Password test failed: wrong password size was used' },
  // §23.2 Get LAN Configuration Parameters, Table 23-3
  '12:2': { 0x80: 'Parameter not supported' },
  '12:1': { 0x80: 'Parameter not supported', 0x81: 'Attempt to set the set-in-progress value while not in set complete state', 0x82: 'Attempt to write read-only parameter' },
};

/** The spec's name for a completion code, in the context of the request that got it. */
export function completionCodeName(code: number, netFn?: number, cmd?: number): string {
  if (netFn !== undefined && cmd !== undefined) {
    const specific = COMMAND_SPECIFIC[`${netFn & 0xfe}:${cmd}`]?.[code];
    if (specific) return specific;
  }
  const generic = GENERIC_NAMES[code];
  if (generic) return generic;
  if (code >= 0x01 && code <= 0x7e) return 'OEM completion code';
  if (code >= 0x80 && code <= 0xbe) return 'Command-specific completion code';
  return 'Reserved completion code';
}
