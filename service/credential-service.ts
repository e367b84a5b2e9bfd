/**
 * The credential engine's public face: one change at a time, recovery of an
 * interrupted one, and the BMC reads. A change is read (bmc-reader.ts), planned
 * (plan.ts, pure) and applied (apply.ts: journal, writes, checks, the plan's
 * undo on failure). See index.ts for the write order and the reasons behind it.
 */
import { MAX_USER_ID } from '../ipmi-kcs/spec.js';
import type { Transport } from '../ipmi-kcs/transport.js';
import { applyPlan, bmcError, runUndo } from './apply.js';
import { BmcClient, type RetryOptions } from './bmc-client.js';
import { BmcFacts, BmcReader, emptyChangeState, type Need } from './bmc-reader.js';
import { ServiceError } from './errors.js';
import type { ChannelAccess, UserAccess } from './ipmi-commands.js';
import { Journal } from './journal.js';
import { silentLogger, type Logger } from './logger.js';
import { enabledOf, planChange, undoFor } from './plan.js';
import {
  privilegeLabel,
  type BmcInfo, type ChannelAccessInfo, type RecoveryReport, type SetCredentialsRequest, type SetCredentialsResult,
} from './types.js';
import { validateRequest, type NormalizedRequest } from './validate.js';

export interface CredentialServiceOptions {
  transport: Transport;
  logger?: Logger;
  /** Directory for the change journal (created 0700; the journal is 0600). Without it, a crash mid-change cannot be recovered. */
  stateDir?: string;
  /** Per IPMI request, ms. */
  timeoutMs?: number;
  retry?: Partial<RetryOptions>;
  /** Randomness for generated passwords; defaults to crypto.randomInt. */
  random?: { randomInt?: (max: number) => number };
  /** Back-off sleep (tests may shorten it). */
  sleep?: (ms: number) => Promise<void>;
}

/** What a failed read was part of, for the error that says nothing was changed. */
const READ_PHASE: Record<Need['read'], string> = {
  'device': 'discovering the BMC failed',
  'lan-channels': 'discovering the BMC failed',
  'limits': 'discovering the BMC failed',
  'user-names': 'reading the user table failed',
  'user-access': 'reading the BMC failed',
  'all-lan-channels': 'reading the BMC failed',
  'channel-access': 'reading the BMC failed',
  'lan-address': 'reading the BMC failed',
  'password-test': 'reading the BMC failed',
};

const ACCESS_MODE: ChannelAccessInfo['accessMode'][] = ['disabled', 'pre-boot', 'always', 'shared'];
const SESSION_SUPPORT = ['session-less', 'single-session', 'multi-session', 'session-based'] as const;

function channelAccessInfo(a: ChannelAccess | null): ChannelAccessInfo | null {
  if (!a) return null;
  return { accessMode: ACCESS_MODE[a.accessMode] ?? 'disabled', privilegeLimit: privilegeLabel(a.privilegeLimit) };
}

export class CredentialService {
  readonly transport: Transport;
  #client: BmcClient;
  #logger: Logger;
  #journal: Journal | undefined;
  #randomInt: ((max: number) => number) | undefined;
  /** The BMC's Device ID and channel table across changes (bmc-reader.ts): a daemon's later changes skip the channel scan. */
  #facts = new BmcFacts();
  #busy = false;
  #recovered = false;

  constructor(opts: CredentialServiceOptions) {
    if (!opts?.transport) throw new TypeError('CredentialService needs a transport');
    this.transport = opts.transport;
    this.#logger = opts.logger ?? silentLogger;
    const clientOpts: ConstructorParameters<typeof BmcClient>[1] = { logger: this.#logger };
    if (opts.timeoutMs !== undefined) clientOpts.timeoutMs = opts.timeoutMs;
    if (opts.retry) clientOpts.retry = opts.retry;
    if (opts.sleep) clientOpts.sleep = opts.sleep;
    this.#client = new BmcClient(opts.transport, clientOpts);
    this.#journal = opts.stateDir ? new Journal(opts.stateDir) : undefined;
    this.#randomInt = opts.random?.randomInt;
  }

  /** True while a change (or a recovery) is running. */
  get busy(): boolean {
    return this.#busy;
  }

  /** IPMI requests sent since construction (retries included). */
  get requests(): number {
    return this.#client.requests;
  }

  #busyError(): ServiceError {
    return new ServiceError('BUSY', 'another credential change is in progress');
  }

  /**
   * Call once at start, before serving: finds a change an earlier process left
   * half done (its journal) and rolls it back. Returns what it did, or null when
   * there was nothing to recover.
   */
  async recover(): Promise<RecoveryReport | null> {
    if (this.#busy) throw this.#busyError();
    this.#busy = true;
    try {
      return await this.#recover();
    } finally {
      this.#busy = false;
    }
  }

  async #recover(): Promise<RecoveryReport | null> {
    if (!this.#journal) {
      this.#recovered = true;
      return null;
    }
    const state = await this.#journal.inspect();
    if (state.kind === 'none') {
      this.#recovered = true;
      return null;
    }
    if (state.kind === 'live') {
      throw new ServiceError('BUSY', `process ${state.record.pid} is changing user ${state.record.prior.userId} right now`, { details: { pid: state.record.pid, userId: state.record.prior.userId } });
    }
    if (state.kind === 'torn') {
      // The journal is made durable before the first BMC write, so a torn one means none happened.
      this.#logger.warn('discarding a torn change journal: the interrupted change had not written to the BMC', { path: this.#journal.path });
      await this.#journal.remove();
      this.#recovered = true;
      return { startedAt: '', pid: 0, userId: 0, username: '', outcome: 'discarded', steps: [], requests: 0 };
    }
    const rec = state.record;
    const start = this.#client.requests;
    this.#logger.warn('rolling back an interrupted credential change', { userId: rec.prior.userId, username: rec.username, startedAt: rec.startedAt, pid: rec.pid });
    // Nothing is known about how far it got: the whole undo of its plan, rebuilt from the journal.
    const outcome = await runUndo(this.#client, rec.prior, undoFor(rec.prior, rec.channelAccess), this.#logger);
    const report: RecoveryReport = {
      startedAt: rec.startedAt, pid: rec.pid, userId: rec.prior.userId, username: rec.username,
      outcome: outcome.ok ? 'rolled-back' : 'rollback-failed',
      steps: [...outcome.steps, ...outcome.notes.map((note) => ({ action: 'note', ok: true, note }))],
      requests: this.#client.requests - start,
    };
    if (outcome.ok) {
      await this.#journal.remove();
      this.#recovered = true;
      this.#logger.info('interrupted credential change rolled back', { userId: rec.prior.userId });
    } else {
      this.#recovered = false;
      this.#logger.error('rolling back an interrupted credential change failed; the journal is kept', { userId: rec.prior.userId, path: this.#journal.path });
    }
    return report;
  }

  async #ensureRecovered(): Promise<void> {
    if (this.#recovered) return;
    const report = await this.#recover();
    if (report?.outcome === 'rollback-failed') {
      throw new ServiceError('INTERRUPTED_CHANGE', `an interrupted change to user ${report.userId} could not be rolled back; no new change is accepted until it is`, { details: { recovery: report } });
    }
  }

  /** Reads the BMC's identity, LAN channels and user table. Never writes; may run between changes' commands. */
  async getInfo(): Promise<BmcInfo> {
    const reader = new BmcReader(this.#client, this.#logger);
    try {
      const dev = await reader.device();
      const lan = await reader.lanChannels();
      const lanChannels: BmcInfo['lanChannels'] = [];
      for (const c of lan) {
        lanChannels.push({
          channel: c.channel, medium: c.mediumName, mediumCode: c.medium, protocol: c.protocol,
          sessionSupport: SESSION_SUPPORT[c.sessionSupport] ?? 'session-less', activeSessions: c.activeSessions,
          access: {
            volatile: channelAccessInfo(await reader.channelAccess(c.channel, 'volatile')),
            nonVolatile: channelAccessInfo(await reader.channelAccess(c.channel, 'non-volatile')),
          },
        });
      }
      const info: BmcInfo = {
        device: {
          deviceId: dev.deviceId, deviceRevision: dev.deviceRevision, firmware: dev.firmware, ipmiVersion: dev.ipmiVersion,
          manufacturerId: dev.manufacturerId, productId: dev.productId, updateInProgress: dev.updateInProgress,
        },
        ipmiVersion: dev.ipmiVersion, lanChannels, maxUsers: 0, fixedNameUsers: 0, enabledUsers: 0, users: [], lan: {},
      };
      const first = lan[0];
      if (!first) return info;
      const limits = await reader.limits(first.channel);
      info.maxUsers = limits.maxUsers;
      info.fixedNameUsers = limits.fixedNameCount;
      info.enabledUsers = limits.enabledCount;
      for (let id = 1; id <= Math.min(limits.maxUsers, MAX_USER_ID); id++) {
        const access: UserAccess[] = [];
        const perChannel: BmcInfo['users'][number]['access'] = {};
        for (const c of lan) {
          const a = await reader.userAccess(c.channel, id);
          access.push(a);
          perChannel[c.channel] = { privilege: privilegeLabel(a.privilege), privilegeLevel: a.privilege, ipmiMessaging: a.ipmiMessaging, linkAuth: a.linkAuth, callin: !a.callbackOnly };
        }
        const { enabled, source } = enabledOf(access);
        info.users.push({ id, name: id === 1 ? '' : await reader.userName(id), enabled, enabledSource: source, fixedName: id <= limits.fixedNameCount, access: perChannel });
      }
      info.lan = await reader.lanAddress(lan.map((c) => c.channel));
      return info;
    } catch (err) {
      throw bmcError(err, 'reading the BMC failed');
    }
  }

  /**
   * Just the BMC's LAN identity (address, IPv6 address, MAC) — what the conductor
   * needs for its out-of-band check — without reading the whole user table:
   * Get Channel Info on 1–11 and 2–4 Get LAN Configuration Parameters (§23.2).
   */
  async getLanAddress(): Promise<BmcInfo['lan']> {
    const reader = new BmcReader(this.#client, this.#logger);
    try {
      return await reader.lanAddress((await reader.lanChannels()).map((c) => c.channel));
    } catch (err) {
      throw bmcError(err, 'reading the BMC LAN configuration failed');
    }
  }

  /**
   * Creates or updates one BMC user so it can log in over LAN. One change at a
   * time: a second call while one runs is refused with BUSY at once.
   */
  async setCredentials(request: SetCredentialsRequest): Promise<SetCredentialsResult> {
    const req = validateRequest(request);
    if (this.#busy) throw this.#busyError();
    this.#busy = true;
    try {
      await this.#ensureRecovered();
      return await this.#change(req);
    } finally {
      this.#busy = false;
    }
  }

  /**
   * Reads what the plan asks for, one need at a time, until the planner has
   * the whole plan (or refuses the change); then runs it.
   */
  async #change(req: NormalizedRequest): Promise<SetCredentialsResult> {
    try {
      return await this.#changeOnce(req);
    } catch (err) {
      // Whatever went wrong, the next change reads the channel table afresh.
      this.#facts.clear();
      throw err;
    }
  }

  async #changeOnce(req: NormalizedRequest): Promise<SetCredentialsResult> {
    const reader = new BmcReader(this.#client, this.#logger, this.#facts);
    const startRequests = this.#client.requests;
    const state = emptyChangeState();
    const fill = { ...(req.password ? { password: req.password } : {}), ...(this.#randomInt ? { randomInt: this.#randomInt } : {}) };
    let planning = planChange(state, req);
    while (planning.need) {
      const need = planning.need;
      try {
        await reader.fill(state, need, fill);
      } catch (err) {
        throw bmcError(err, READ_PHASE[need.read]);
      }
      planning = planChange(state, req);
    }
    try {
      return await applyPlan(planning.plan, {
        client: this.#client, reader, logger: this.#logger, journal: this.#journal, password: req.password, randomInt: this.#randomInt,
        recoverAgain: () => this.#ensureRecoveredAgain(), startRequests,
      });
    } catch (err) {
      // A roll-back that failed keeps its journal: the next change retries it first.
      if (err instanceof ServiceError && err.code === 'ROLLBACK_FAILED' && this.#journal) this.#recovered = false;
      throw err;
    }
  }

  async #ensureRecoveredAgain(): Promise<void> {
    this.#recovered = false;
    await this.#ensureRecovered();
  }
}
