/**
 * IPMI constants this agent speaks, with the section of the IPMI v2.0 (rev 1.1)
 * specification that defines each. Shared by the simulated BMC and service/.
 */

/** Network functions, §5.1 Table 5-1 (request values; response = request | 1). */
export const NetFn = {
  CHASSIS: 0x00,
  SENSOR: 0x04,
  APP: 0x06,
  FIRMWARE: 0x08,
  STORAGE: 0x0a,
  TRANSPORT: 0x0c,
} as const;

/** App NetFn commands, Appendix G Table G-1. */
export const AppCmd = {
  GET_DEVICE_ID: 0x01, // §20.1
  COLD_RESET: 0x02, // §20.2
  WARM_RESET: 0x03, // §20.3
  GET_CHANNEL_AUTH_CAPABILITIES: 0x38, // §22.13
  SET_CHANNEL_ACCESS: 0x40, // §22.22
  GET_CHANNEL_ACCESS: 0x41, // §22.23
  GET_CHANNEL_INFO: 0x42, // §22.24
  SET_USER_ACCESS: 0x43, // §22.26
  GET_USER_ACCESS: 0x44, // §22.27
  SET_USER_NAME: 0x45, // §22.28
  GET_USER_NAME: 0x46, // §22.29
  SET_USER_PASSWORD: 0x47, // §22.30
} as const;

/** Transport NetFn commands, Appendix G. */
export const TransportCmd = {
  SET_LAN_CONFIG: 0x01, // §23.1
  GET_LAN_CONFIG: 0x02, // §23.2
} as const;

/** LAN configuration parameter selectors, §23.2 Table 23-4 (and IPv6 params added by IPMI v2.0 errata / DCMI). */
export const LanParam = {
  SET_IN_PROGRESS: 0,
  IP_ADDRESS: 3,
  IP_ADDRESS_SOURCE: 4,
  MAC_ADDRESS: 5,
  SUBNET_MASK: 6,
  DEFAULT_GATEWAY: 12,
  /** IPv6/IPv4 support, IPMI v2.0 rev 1.1 errata 4 parameter 50. */
  IPV6_IPV4_SUPPORT: 50,
  /** IPv6 static addresses, parameter 56. */
  IPV6_STATIC_ADDRESSES: 56,
  /** IPv6 dynamic (SLAAC/DHCPv6) addresses, parameter 59. */
  IPV6_DYNAMIC_ADDRESSES: 59,
} as const;

/** Privilege levels, §6.8 / Table 22-28. */
export const Privilege = {
  CALLBACK: 0x1,
  USER: 0x2,
  OPERATOR: 0x3,
  ADMINISTRATOR: 0x4,
  OEM: 0x5,
  NO_ACCESS: 0xf,
} as const;

/** Channel medium types, §6.5 Table 6-3. */
export const ChannelMedium = {
  IPMB: 0x01,
  LAN_802_3: 0x04,
  SERIAL: 0x05,
  OTHER_LAN: 0x06,
  SYSTEM_INTERFACE: 0x0c,
} as const;

/** Channel numbers with fixed meaning, §6.3 Table 6-1. */
export const Channel = {
  PRIMARY_IPMB: 0x0,
  CURRENT: 0xe,
  SYSTEM_INTERFACE: 0xf,
} as const;

/** Set User Password operations, §22.30 Table 22-33 byte 2 [1:0]. */
export const PasswordOp = {
  DISABLE_USER: 0,
  ENABLE_USER: 1,
  SET_PASSWORD: 2,
  TEST_PASSWORD: 3,
} as const;

/** Set User Password byte 1 bit 7: 1 = 20-byte password (IPMI v2.0 only), §22.30. */
export const PASSWORD_SIZE_20 = 0x80;

/** User name and password field sizes, §22.28 and §22.30. */
export const USER_NAME_LENGTH = 16;
export const PASSWORD_16 = 16;
export const PASSWORD_20 = 20;
/** User IDs are 6 bits (§22.26): 1..63; user 1 is the anonymous/null user (§6.9.1). */
export const MAX_USER_ID = 63;
export const ANONYMOUS_USER_ID = 1;
