/**
 * Runs inside the qemu guest (through the 9p host root) against the guest
 * kernel's real /dev/ipmi0: the credential service over the native backend.
 *
 *   node set-credentials-guest.js --user NAME --state DIR
 *
 * The password comes from the host over the console (`ask secret:password`);
 * every step reports one `@@inband:result` line, never holding the password.
 */
import { openNativeTransport } from '../../../ipmi-kcs/kcs-native.js';
import { CredentialService, Secret, ServiceError, type SetCredentialsResult } from '../../../service/index.js';
import { HostChannel, report } from '../../qemu/guest/protocol.js';

const arg = (name: string): string => {
  const i = process.argv.indexOf(name);
  const v = i > 0 ? process.argv[i + 1] : undefined;
  if (!v) throw new Error(`usage: set-credentials-guest --user NAME --state DIR (missing ${name})`);
  return v;
};
const ms = (t0: number): number => Math.round(performance.now() - t0);
const summary = (r: SetCredentialsResult): Record<string, unknown> => ({
  userId: r.userId, slot: r.slot, channels: r.channels, changed: r.changed, passwordBefore: r.passwordBefore,
  verified: r.verified, requests: r.requests, actions: r.actions, warnings: r.warnings, bmc: r.bmc,
});

async function main(): Promise<number> {
  const user = arg('--user');
  const stateDir = arg('--state');
  const host = new HostChannel();
  const t = await openNativeTransport({ devicePath: '/dev/ipmi0' });
  try {
    const svc = new CredentialService({ transport: t, stateDir, timeoutMs: 5000 });
    report({ step: 'recover', report: await svc.recover() });
    const password = Secret.fromString(await host.ask('secret:password'));
    // Before our user exists, slot 2 holds the only enabled administrator.
    let t0 = performance.now();
    try {
      await svc.setCredentials({ username: 'takeover', password, slot: 2 });
      report({ step: 'lockout', refused: false });
    } catch (err) {
      report({ step: 'lockout', refused: err instanceof ServiceError && err.code === 'LOCKOUT_REFUSED', code: err instanceof ServiceError ? err.code : String(err), ms: ms(t0) });
    }
    t0 = performance.now();
    const first = await svc.setCredentials({ username: user, password });
    report({ step: 'set', ms: ms(t0), ...summary(first) });
    report({ step: 'login', host: await host.ask('check-login') });
    t0 = performance.now();
    const again = await svc.setCredentials({ username: user, password });
    report({ step: 'repeat', ms: ms(t0), ...summary(again) });
    password.dispose();
    report({ step: 'stats', stats: t.stats() });
    return 0;
  } finally {
    host.close();
    await t.close();
  }
}

main().then((code) => { process.exitCode = code; }, (err: unknown) => {
  report({ step: 'fatal', error: err instanceof Error ? `${err.name}: ${err.message}` : String(err), code: err instanceof ServiceError ? err.code : undefined });
  process.exitCode = 1;
});
