/**
 * Child process for crash-recovery.test.ts: starts a credential change against
 * a simulated BMC that keeps its state in a file, and hangs it at Set User
 * Access (never answered), so the parent can kill this process mid-change.
 * Arguments: <stateFile> <stateDir>; the password comes on stdin (never argv).
 */
import { createSimulatedTransport } from '../../ipmi-kcs/simulated/index.js';
import { AppCmd, NetFn } from '../../ipmi-kcs/spec.js';
import { CredentialService } from '../../service/index.js';
import { Secret } from '../../service/secret.js';

const [stateFile, stateDir] = process.argv.slice(2);
if (!stateFile || !stateDir) throw new Error('usage: crash-child <stateFile> <stateDir>');
const chunks: Buffer[] = [];
for await (const c of process.stdin) chunks.push(c as Buffer);
const password = Secret.fromBuffer(Buffer.concat(chunks));

const t = createSimulatedTransport({ profile: 'ipmi20', stateFile });
t.bmc.noResponse({ netFn: NetFn.APP, cmd: AppCmd.SET_USER_ACCESS });
const svc = new CredentialService({ transport: t, stateDir, timeoutMs: 120_000, retry: { attempts: 1 } });
void svc.setCredentials({ username: 'crash_user', password });
const timer = setInterval(() => {
  if (!t.bmc.record.some((e) => e.cmd === AppCmd.SET_USER_ACCESS)) return;
  clearInterval(timer);
  void t.bmc.flush().then(() => process.stdout.write('HUNG\n'));
}, 5);
