/**
 * service/ — what an in-band BMC credential change means.
 *
 * `CredentialService` creates or updates one IPMI user through the transport
 * (ipmi-kcs/), so that the Ironic conductor can log in to the BMC over LAN.
 *
 * ## A change, step by step
 * 1. **Discover** (reads only): Get Device ID (§20.1: IPMI version, vendor);
 *    Get Channel Info on channels 1–11 (§22.24: medium 802.3 LAN, or "Other LAN"
 *    as OpenBMC before OP940.01 reports it); Get User Access on user 1 (§22.27:
 *    maximum user ids, fixed-name count); Get User Name for every slot 2..max
 *    (§22.29; 0xCC/0xC9/0xCB mean empty); the target slot's access per LAN
 *    channel; Get Channel Access (§22.23); the BMC's LAN address (§23.2).
 * 2. **Choose the slot**: the slot already named `username`; else the first
 *    empty slot above user 1 and the vendor fixed-name slots; or the explicit
 *    `slot`. Refused without writing: no free slot (NO_FREE_SLOT), a fixed-name
 *    slot without `allowFixedSlot`, a name already held by another slot, and
 *    any change that would leave a LAN channel without an enabled
 *    administrator it had — demoting, renaming or reusing the slot of the last
 *    one (LOCKOUT_REFUSED) — unless `allowLockout` asks for it.
 * 3. **Journal** the slot's previous name, enabled state and per-channel access
 *    (never the password) to `<stateDir>/credential-change.journal.json`, 0600,
 *    fsync'd, created with O_EXCL (it is also the cross-process lock).
 * 4. **Write, in this order**, skipping what is already in place:
 *    1. Set User Name (§22.28) — first, because Dell R420 wants the name before
 *       password and enable, and a failure here leaves nothing to undo;
 *    2. Set User Password, op 2 (§22.30) — always (passwords are write-only, so
 *       "already in place" can only be guessed with Test Password); the 20-byte
 *       form only for a password longer than 16 bytes on IPMI 2.0;
 *    3. enable, op 1 (§22.30) — after the password: Dell R610/R710 refuse to
 *       enable a slot without one (0xD5); with 16 zero bytes, as Sun X4140 and
 *       Intel Windmill need, and the 2-byte form on 0xC7;
 *    4. Set User Access (§22.26) on **every** LAN channel: privilege limit, IPMI
 *       messaging, link auth, callin; 4-byte form, session limit 0 (the 3-byte
 *       form drew 0xC7 on some BMCs; OpenBMC refuses a non-zero limit). Last,
 *       because it is what opens LAN logins; a Supermicro-like 0xCC gets the
 *       privilege alone first, then the whole set (MAAS's order);
 *    5. Set Channel Access (§22.22), opt-in (`enableChannelAccess`), only where
 *       the access mode or channel privilege limit blocks logins.
 * 5. **Verify in-band**: Test Password (op 3) in the size it was set; read back
 *    the name, enabled state and per-channel access. The result says exactly
 *    which of these held. Out-of-band login is the conductor's proof; the result
 *    gives it the user id, channels and BMC address.
 * 6. **Roll back or finish, never half**: any failure after the first write
 *    (or a read-back disagreement) restores the slot's previous name, enabled
 *    state and per-channel access — a slot that was empty ends empty and
 *    disabled — then reads it back. A roll-back fault is reported
 *    (ROLLBACK_FAILED), and the journal is kept so the next start retries it.
 *
 * Retries: only 0xC0, 0xD2 (not executed), 0xC3/0xFF/timeouts/short responses
 * (user-management writes are idempotent, so a re-sent one is harmless), and
 * EBUSY/EAGAIN, with bounded back-off (see bmc-client.ts).
 *
 * Idempotent: a repeated request succeeds and writes nothing that matters —
 * name, enable and access already in place are skipped and reported as
 * "in place"; the password, which cannot be read back, is re-written, and
 * `changed` counts it only when Test Password showed it differed (a control test
 * with a wrong password exposes BMCs, like ipmi_sim, whose Test Password accepts
 * anything: `passwordBefore: 'unknown'`, `verified.passwordTest: 'unreliable'`).
 *
 * Reads: `getInfo()` (device, LAN channels with access, the whole user table,
 * LAN identity) and `getLanAddress()` (LAN identity only, no user-table scan).
 *
 * One change at a time: a concurrent `setCredentials` is refused with BUSY at
 * once; `getInfo` reads may interleave with a change's commands (the transport
 * queue keeps each request whole).
 *
 * Secrets: passwords travel as {@link Secret} (prints `***`), request buffers
 * holding them are zeroed after sending, and no log line, error, journal or
 * result carries one — except `generatedPassword`, itself a Secret.
 *
 * Request count of a fresh change: see request-budget.ts.
 *
 * ## Where each step lives
 * The reads of steps 1–2 are made by bmc-reader.ts as the planner asks for
 * them; plan.ts decides steps 2–6 as data (a pure function of the BMC state
 * and the request: slot, writes, checks, lock-out, undo); apply.ts runs the
 * plan with the journal and, on failure, the plan's undo.
 */
export { Secret } from './secret.js';
export { generatePassword, PASSWORD_POLICIES, policiesFor, type PasswordPolicy, type GenerateOptions } from './password-generator.js';
export { ServiceError, type ServiceErrorCode } from './errors.js';
export { silentLogger, type Logger } from './logger.js';
export { CredentialService, type CredentialServiceOptions } from './credential-service.js';
export { DEFAULT_RETRY, DEFAULT_CALL_TIMEOUT_MS, type RetryOptions } from './bmc-client.js';
export { CREDENTIAL_CONTRACT, checkWireParams, credentialArgsinfo, credentialParamsSchema, type ContractField, type ContractViolation } from './credential-contract.js';
export { minimumFreshChangeRequests, type RequestBudgetInput } from './request-budget.js';
export {
  PRIVILEGE_LEVEL, privilegeLabel,
  type PrivilegeName, type SetCredentialsRequest, type SetCredentialsResult, type Verification, type BmcIdentity,
  type BmcInfo, type UserAccessInfo, type ChannelAccessInfo, type RecoveryReport, type RollbackStep,
} from './types.js';
