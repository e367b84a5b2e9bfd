/**
 * The transport contract suite against the native /dev/ipmi0 backend.
 *
 * It writes a user name to a free slot (and clears it again), so it runs only
 * where that is known to be harmless: set INBAND_TEST_NATIVE_DEVICE=1 (the
 * qemu real-kernel test does, inside its guest, whose BMC is a throw-away
 * ipmi_sim) and optionally INBAND_TEST_NATIVE_FREE_SLOT / _LAN_CHANNEL.
 */
import { test } from 'node:test';
import { nativeAvailability, openNativeTransport } from '../../ipmi-kcs/kcs-native.js';
import { describeTransportContract } from './transport-contract.js';

const avail = await nativeAvailability({ devicePath: process.env.INBAND_TEST_NATIVE_DEVICE_PATH });
const enabled = process.env.INBAND_TEST_NATIVE_DEVICE === '1';

if (enabled && avail.addonLoaded && avail.device) {
  describeTransportContract(`native (${avail.device})`, async () => {
    const transport = await openNativeTransport({ devicePath: avail.device });
    return {
      transport,
      freeSlot: Number(process.env.INBAND_TEST_NATIVE_FREE_SLOT ?? 9),
      lanChannel: Number(process.env.INBAND_TEST_NATIVE_LAN_CHANNEL ?? 1),
      close: () => transport.close(),
      stallUnavailable: 'a real BMC cannot be paused from inside the host; test/qemu stops ipmi_sim behind the guest for this case',
    };
  });
} else {
  const why = !avail.addonLoaded
    ? `native addon not loaded: ${avail.addonError}`
    : !avail.device
      ? `no IPMI device (${avail.deviceError ?? 'no /dev/ipmi0'}); test/qemu runs this suite in a guest with a real ipmi_si KCS device`
      : 'INBAND_TEST_NATIVE_DEVICE=1 not set: this suite writes a user name to a free slot, so it runs only against a throw-away BMC (test/qemu sets it)';
  test('transport contract: native (/dev/ipmi0)', { skip: why }, () => undefined);
}
