/**
 * Runs inside the qemu guest (through the 9p host root) against the guest
 * kernel's real /dev/ipmi0: opens the native transport and creates a BMC user
 * in-band, then lets the host stop the BMC to check that a request times out
 * instead of hanging, and that the transport works again once the BMC is back.
 *
 *   node native-kcs-guest.js --user NAME
 *
 * The password comes from the host over the console (`ask secret:password`).
 * Every step reports one `@@inband:result` line; no line ever holds the password.
 */
import { IpmiError, IpmiTimeoutError, IpmiTransportError, IpmiCompletionCodeError } from '../../../ipmi-kcs/errors.js';
import { invoke } from '../../../ipmi-kcs/invoke.js';
import { openNativeTransport, type NativeTransport } from '../../../ipmi-kcs/kcs-native.js';
import { AppCmd, ChannelMedium, NetFn, PasswordOp, Privilege, USER_NAME_LENGTH, PASSWORD_16, ANONYMOUS_USER_ID } from '../../../ipmi-kcs/spec.js';
import { HostChannel, report } from './protocol.js';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const ms = (t0: number): number => Math.round((performance.now() - t0) * 10) / 10;

function fixed(text: string, size: number): number[] {
  const bytes = [...Buffer.from(text, 'utf8')];
  if (bytes.length > size) throw new Error(`value longer than ${size} bytes`);
  return [...bytes, ...new Array<number>(size - bytes.length).fill(0)];
}

function describeError(err: unknown): Record<string, unknown> {
  if (err instanceof IpmiCompletionCodeError) return { error: err.name, completionCode: err.completionCode, message: err.message };
  if (err instanceof IpmiTransportError) return { error: err.name, code: err.code, message: err.message };
  if (err instanceof IpmiError) return { error: err.name, message: err.message };
  return { error: err instanceof Error ? err.name : 'unknown', message: err instanceof Error ? err.message : String(err) };
}

/** §22.24 Get Channel Info on channels 1..11 (§6.3): the first 802.3 LAN channel. */
async function findLanChannel(t: NativeTransport): Promise<number> {
  for (let ch = 1; ch <= 0x0b; ch++) {
    const rsp = await t.send({ netFn: NetFn.APP, cmd: AppCmd.GET_CHANNEL_INFO, data: [ch] });
    if (rsp.completionCode === 0 && ((rsp.data[1] ?? 0) & 0x7f) === ChannelMedium.LAN_802_3) return ch;
  }
  throw new Error('no LAN channel found');
}

/** §22.27 Get User Access gives the slot count; §22.29 Get User Name finds the first unnamed slot after the administrator's. */
async function findFreeSlot(t: NativeTransport, ch: number): Promise<{ slot: number; maxUsers: number }> {
  const access = await invoke(t, { netFn: NetFn.APP, cmd: AppCmd.GET_USER_ACCESS, data: [ch, ANONYMOUS_USER_ID] }, { what: 'Get User Access' });
  const maxUsers = (access[0] ?? 0) & 0x3f;
  for (let uid = 3; uid <= maxUsers; uid++) {
    const rsp = await t.send({ netFn: NetFn.APP, cmd: AppCmd.GET_USER_NAME, data: [uid] });
    if (rsp.completionCode === 0 && rsp.data.every((b) => b === 0)) return { slot: uid, maxUsers };
  }
  throw new Error(`no free user slot among 3..${maxUsers}`);
}

async function main(): Promise<number> {
  const userIdx = process.argv.indexOf('--user');
  const user = userIdx > 0 ? process.argv[userIdx + 1] : undefined;
  if (!user) throw new Error('usage: native-kcs-guest --user NAME');
  const host = new HostChannel();
  let t0 = performance.now();
  // The transport logs stale responses it dropped at debug level: keep them to report.
  const debug: string[] = [];
  const t = await openNativeTransport({ devicePath: '/dev/ipmi0', logger: { info: () => undefined, debug: (msg) => debug.push(msg) } });
  report({ step: 'open', kind: t.kind, device: t.devicePath, addon: t.addonPath, ms: ms(t0) });
  try {
    // §20.1 Get Device ID.
    t0 = performance.now();
    const devid = await t.send({ netFn: NetFn.APP, cmd: AppCmd.GET_DEVICE_ID });
    report({ step: 'get-device-id', completionCode: devid.completionCode, data: hex(devid.data), ms: ms(t0) });

    // In-band user creation, in the order ipmitool's `user set` commands use.
    const created = performance.now();
    const ch = await findLanChannel(t);
    const { slot, maxUsers } = await findFreeSlot(t, ch);
    const password = await host.ask('secret:password');
    const timings: Record<string, number> = {};
    const step = async (name: string, cmd: number, data: number[]): Promise<void> => {
      const s = performance.now();
      await invoke(t, { netFn: NetFn.APP, cmd, data }, { what: `${name} (user ${slot})` });
      timings[name] = ms(s);
    };
    // §22.28 Set User Name: 16 bytes, NUL padded.
    await step('set-user-name', AppCmd.SET_USER_NAME, [slot, ...fixed(user, USER_NAME_LENGTH)]);
    // §22.30 Set User Password, operation "set password", 16-byte form.
    await step('set-user-password', AppCmd.SET_USER_PASSWORD, [slot, PasswordOp.SET_PASSWORD, ...fixed(password, PASSWORD_16)]);
    // §22.26 Set User Access: change bits, link auth, IPMI messaging; administrator.
    await step('set-user-access', AppCmd.SET_USER_ACCESS, [0x80 | 0x20 | 0x10 | ch, slot, Privilege.ADMINISTRATOR]);
    // §22.30 operation "enable user".
    await step('enable-user', AppCmd.SET_USER_PASSWORD, [slot, PasswordOp.ENABLE_USER]);
    const name = await invoke(t, { netFn: NetFn.APP, cmd: AppCmd.GET_USER_NAME, data: [slot] }, { what: 'Get User Name' });
    const access = await invoke(t, { netFn: NetFn.APP, cmd: AppCmd.GET_USER_ACCESS, data: [ch, slot] }, { what: 'Get User Access' });
    report({
      step: 'create-user', slot, channel: ch, maxUsers, timings, totalMs: ms(created),
      readBack: { name: Buffer.from(name).toString('utf8').replace(/\0+$/, ''), privilege: (access[3] ?? 0) & 0x0f },
    });

    // Fault: the host stops the BMC (after proving the credentials over lanplus).
    // The request that times out is a Get User Name, so that its late answer
    // cannot pass for the Get Device ID asked after the BMC is back.
    const paused = await host.ask('pause-bmc');
    const timeoutMs = 2000;
    t0 = performance.now();
    try {
      const rsp = await t.send({ netFn: NetFn.APP, cmd: AppCmd.GET_USER_NAME, data: [slot] }, { timeoutMs });
      report({ step: 'bmc-stopped', host: paused, timeoutMs, completionCode: rsp.completionCode, elapsedMs: ms(t0) });
    } catch (err) {
      report({ step: 'bmc-stopped', host: paused, timeoutMs, timeout: err instanceof IpmiTimeoutError, ...describeError(err), elapsedMs: ms(t0) });
    }

    // The BMC is back: the next request gets its own answer, not the stale one.
    const resumed = await host.ask('resume-bmc');
    t0 = performance.now();
    try {
      const rsp = await t.send({ netFn: NetFn.APP, cmd: AppCmd.GET_DEVICE_ID }, { timeoutMs: 10_000 });
      report({ step: 'bmc-resumed', host: resumed, completionCode: rsp.completionCode, data: hex(rsp.data), elapsedMs: ms(t0), stats: t.stats(), debug });
    } catch (err) {
      report({ step: 'bmc-resumed', host: resumed, ...describeError(err), elapsedMs: ms(t0), stats: t.stats(), debug });
    }
    return 0;
  } finally {
    await t.close();
    host.close();
  }
}

main().then(
  (code) => { process.exitCode = code; },
  (err: unknown) => {
    report({ step: 'fatal', ...describeError(err) });
    process.exitCode = 1;
  },
);
