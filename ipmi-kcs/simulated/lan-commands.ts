/**
 * §23.2 Get LAN Configuration Parameters of the simulated BMC (read-only: the
 * profile's LAN addresses). Response: parameter revision 0x11, then the data,
 * which is omitted when byte 1 bit 7 asks for the revision only.
 */
import { CC } from '../completion-codes.js';
import { LanParam } from '../spec.js';
import { ipv4Bytes, ipv6Bytes, macBytes } from './addresses.js';
import { fail, findChannel, ok, type CommandHandler, type Reply } from './command-context.js';
import type { LanConfig } from './profiles.js';

/** §23.2 Table 23-3: parameter revision, "11h" for the parameters of this spec. */
const PARAMETER_REVISION = 0x11;
/** Table 23-3 command-specific code: parameter not supported. */
const PARAMETER_NOT_SUPPORTED = 0x80;
/** Parameter 56/59 byte 20, address status: 0 = active. */
const ADDRESS_ACTIVE = 0x00;

function parameterData(lan: LanConfig, param: number, setSelector: number): number[] | Reply {
  switch (param) {
    case LanParam.SET_IN_PROGRESS: return [0x00]; // set complete
    case LanParam.IP_ADDRESS: return ipv4Bytes(lan.ipAddress);
    case LanParam.IP_ADDRESS_SOURCE: return [lan.ipSource];
    case LanParam.MAC_ADDRESS: return macBytes(lan.macAddress);
    case LanParam.SUBNET_MASK: return ipv4Bytes(lan.subnetMask);
    case LanParam.DEFAULT_GATEWAY: return ipv4Bytes(lan.defaultGateway);
  }
  const v6 = lan.ipv6;
  if (!v6) return fail(PARAMETER_NOT_SUPPORTED);
  switch (param) {
    // [2] IPv6 alerting, [1] dual stack, [0] IPv6 only: this BMC runs both stacks.
    case LanParam.IPV6_IPV4_SUPPORT: return [0x02];
    case 51: return [0x02]; // IPv6/IPv4 addressing enables: both enabled
    case 55: return [v6.staticMax, v6.dynamicMax, 0x03]; // IPv6 status: DHCPv6 + SLAAC supported
    case LanParam.IPV6_STATIC_ADDRESSES: {
      if (setSelector >= v6.staticMax) return fail(CC.PARAMETER_OUT_OF_RANGE);
      const a = v6.static[setSelector];
      // set selector, [7] enabled / [3:0] source 0 = static, address, prefix length, status
      if (!a) return [setSelector, 0x00, ...new Array<number>(16).fill(0), 0, 0x01 /* disabled */];
      return [setSelector, 0x80, ...ipv6Bytes(a.address), a.prefixLength, ADDRESS_ACTIVE];
    }
    case LanParam.IPV6_DYNAMIC_ADDRESSES: {
      if (setSelector >= v6.dynamicMax) return fail(CC.PARAMETER_OUT_OF_RANGE);
      const a = v6.dynamic[setSelector];
      if (!a) return [setSelector, 0x00, ...new Array<number>(16).fill(0), 0, 0x01];
      return [setSelector, a.source, ...ipv6Bytes(a.address), a.prefixLength, ADDRESS_ACTIVE];
    }
  }
  return fail(PARAMETER_NOT_SUPPORTED);
}

/** §23.2, Table 23-3: channel, parameter selector, set selector, block selector. */
export const getLanConfig: CommandHandler = (ctx, data) => {
  if (data.length !== 4) return fail(CC.REQUEST_DATA_LENGTH_INVALID);
  const [b0 = 0, param = 0, setSelector = 0] = data;
  if (b0 & 0x70) return fail(CC.INVALID_DATA_FIELD);
  const revisionOnly = (b0 & 0x80) !== 0;
  const ch = findChannel(ctx.profile, b0 & 0x0f);
  if (!ch?.lan) return fail(CC.INVALID_DATA_FIELD);
  if (revisionOnly) return ok([PARAMETER_REVISION]);
  const r = parameterData(ch.lan, param, setSelector);
  if (!Array.isArray(r)) return r;
  return ok([PARAMETER_REVISION, ...r]);
};
