/**
 * An in-process BMC: the state machine behind SimulatedTransport. It answers
 * the commands this agent sends per IPMI v2.0 (and the chosen vendor profile),
 * and carries the test controls: scripted faults, BMC resets, a record of what
 * was sent (Set User Password data redacted) and a view of the user table.
 */
import { CC } from '../completion-codes.js';
import { AppCmd, NetFn, TransportCmd } from '../spec.js';
import type { IpmiResponse, NormalizedRequest } from '../transport.js';
import { cloneState, initialState, nameText, type BmcState, type ChannelAccessState, type EnableStatus, type UserChannelAccess } from './bmc-state.js';
import { fail, type CommandContext, type CommandHandler, type Reply } from './command-context.js';
import { getChannelAccess, getChannelAuthCapabilities, getChannelInfo, getDeviceId, setChannelAccess } from './device-commands.js';
import { FaultPlan, type FaultAction, type FaultMatch, type FaultSpec, type ResetRevert, type ResetWindowResponse } from './faults.js';
import { getLanConfig } from './lan-commands.js';
import { AT_REST_COST, hashPassword, IN_MEMORY_COST, padPassword, passwordMatches, type KdfCost } from './password-hash.js';
import { DEFAULT_PROFILE, getProfile, lanChannels, type BmcProfile } from './profiles.js';
import { loadStateFile, saveStateFile } from './state-file.js';
import { getUserAccess, getUserName, setUserAccess, setUserName, setUserPassword } from './user-commands.js';

export interface SimulatedBmcOptions {
  /** Vendor profile name (see listProfiles()); default `ipmi20`. */
  profile?: string;
  /** JSON state file (mode 0600) loaded at start and rewritten after every change. */
  stateFile?: string;
  /**
   * `immediate` (default): every change is committed to non-volatile storage at
   * once, as BMCs do for the user table. `deferred`: only {@link SimulatedBmc.commit}
   * commits, so a reset loses what came after — a BMC that writes flash lazily.
   */
  commit?: 'immediate' | 'deferred';
}

export interface RecordEntry {
  /** 1-based, in arrival order. */
  seq: number;
  netFn: number;
  cmd: number;
  lun: number;
  /** Request data length. */
  length: number;
  /** Request data; for Set User Password only bytes 1–2 (user id + size flag, operation). */
  data: number[];
  redacted: boolean;
  /** Whether the command changed (or would have read) BMC state. */
  executed: boolean;
  /** Completion code sent, or undefined when the BMC sent nothing. */
  completionCode?: number;
  responseLength?: number;
  /** Which scripted fault or reset window hit this request. */
  fault?: FaultAction['kind'] | 'reset-window';
}

export interface UserView {
  id: number;
  name: string;
  nameBytes: number[];
  fixedName: boolean;
  enabled: boolean;
  enableStatus: EnableStatus;
  password: {
    size: 16 | 20;
    isNull: boolean;
    /** Salted hash: equal hashes mean the stored password was not rewritten. */
    hash: string;
    /**
     * Known when it was set in this process (or from the profile); never in the
     * state file. A secret: for test assertions only, never to be logged or served.
     */
    bytes?: Uint8Array;
  };
  /** Per session-based channel. */
  access: Record<number, UserChannelAccess>;
}

export interface ResetOptions {
  /** `non-volatile` (default): back to the last committed state; `factory`: to the profile's defaults. */
  revertTo?: ResetRevert;
  /** Requests answered by the reset window before the BMC is back (default 2). */
  window?: number;
  /** What they get: `initializing` 0xD2 (default), `busy` 0xC0, or no response. */
  windowResponse?: ResetWindowResponse;
}

/** What the BMC does with one request: answer it (after `delayMs` more) or never. */
export type BmcOutcome = { response: IpmiResponse; delayMs: number } | { response: null };

const HANDLERS: Record<string, CommandHandler> = {
  [`${NetFn.APP}:${AppCmd.GET_DEVICE_ID}`]: getDeviceId,
  [`${NetFn.APP}:${AppCmd.GET_CHANNEL_AUTH_CAPABILITIES}`]: getChannelAuthCapabilities,
  [`${NetFn.APP}:${AppCmd.SET_CHANNEL_ACCESS}`]: setChannelAccess,
  [`${NetFn.APP}:${AppCmd.GET_CHANNEL_ACCESS}`]: getChannelAccess,
  [`${NetFn.APP}:${AppCmd.GET_CHANNEL_INFO}`]: getChannelInfo,
  [`${NetFn.APP}:${AppCmd.SET_USER_ACCESS}`]: setUserAccess,
  [`${NetFn.APP}:${AppCmd.GET_USER_ACCESS}`]: getUserAccess,
  [`${NetFn.APP}:${AppCmd.SET_USER_NAME}`]: setUserName,
  [`${NetFn.APP}:${AppCmd.GET_USER_NAME}`]: getUserName,
  [`${NetFn.APP}:${AppCmd.SET_USER_PASSWORD}`]: setUserPassword,
  [`${NetFn.TRANSPORT}:${TransportCmd.GET_LAN_CONFIG}`]: getLanConfig,
};

const WINDOW_CODE: Record<Exclude<ResetWindowResponse, 'no-response'>, number> = {
  busy: CC.NODE_BUSY,
  initializing: CC.INITIALIZATION_IN_PROGRESS,
};

export class SimulatedBmc {
  readonly profile: BmcProfile;
  readonly stateFile: string | undefined;
  #state: BmcState;
  #nonVolatile: BmcState;
  #commitMode: 'immediate' | 'deferred';
  /** Hash cost: strong when hashes go to a state file, cheap when nothing is at rest. */
  #kdf: KdfCost;
  #faults = new FaultPlan();
  #record: RecordEntry[] = [];
  #seq = 0;
  #window: { remaining: number; response: ResetWindowResponse } | null = null;
  #resets = 0;
  #dirty = false;
  #saving: Promise<void> = Promise.resolve();
  #saveError: unknown;
  /** hash → password bytes, memory only, for the test view. */
  #known = new Map<string, Uint8Array>();

  constructor(opts: SimulatedBmcOptions = {}) {
    this.profile = getProfile(opts.profile ?? DEFAULT_PROFILE);
    this.stateFile = opts.stateFile;
    this.#commitMode = opts.commit ?? 'immediate';
    this.#kdf = this.stateFile ? AT_REST_COST : IN_MEMORY_COST;
    const saved = this.stateFile ? loadStateFile(this.stateFile) : undefined;
    if (saved && saved.profile !== this.profile.name) {
      throw new Error(`simulated BMC state file ${this.stateFile} belongs to profile "${saved.profile}", not "${this.profile.name}"`);
    }
    if (saved) {
      for (const st of [saved.state, saved.nonVolatile]) this.#checkShape(st);
      this.#state = saved.state;
      this.#nonVolatile = saved.nonVolatile;
    } else {
      this.#state = this.#factoryState();
      this.#nonVolatile = cloneState(this.#state);
      if (this.stateFile) this.#scheduleSave();
    }
  }

  /** A state file must describe this profile's BMC: its user slots and session channels. */
  #checkShape(st: BmcState): void {
    const channels = this.profile.channels.filter((c) => c.access).map((c) => String(c.number)).sort().join(',');
    const bad = (why: string): never => { throw new Error(`simulated BMC state file ${this.stateFile} does not match profile "${this.profile.name}": ${why}`); };
    if (st.users.filter(Boolean).length !== this.profile.maxUsers || st.users.length !== this.profile.maxUsers + 1) bad('user slots');
    if (Object.keys(st.channelAccess ?? {}).sort().join(',') !== channels) bad('channels');
    for (const u of st.users) if (u && Object.keys(u.access ?? {}).sort().join(',') !== channels) bad(`user ${u.id} access`);
  }

  #factoryState(): BmcState {
    const s = initialState(this.profile, this.#kdf);
    for (const u of this.profile.users) {
      const slot = s.users[u.id];
      if (slot && u.password) this.#known.set(slot.password.hash, padPassword(u.password, 16));
    }
    return s;
  }

  /** Processes one request (the transport calls this on a later tick). */
  handle(req: NormalizedRequest): BmcOutcome {
    const entry: RecordEntry = {
      seq: ++this.#seq,
      netFn: req.netFn,
      cmd: req.cmd,
      lun: req.lun,
      length: req.data.length,
      redacted: false,
      data: [],
      executed: false,
    };
    // §22.30: the password is the only secret on this interface; keep user id/size and operation.
    if (req.netFn === NetFn.APP && req.cmd === AppCmd.SET_USER_PASSWORD) {
      entry.data = Array.from(req.data.subarray(0, 2));
      entry.redacted = true;
    } else {
      entry.data = Array.from(req.data);
    }
    this.#record.push(entry);

    if (this.#window) {
      entry.fault = 'reset-window';
      const { response } = this.#window;
      if (--this.#window.remaining <= 0) this.#window = null;
      if (response === 'no-response') return { response: null };
      return this.#answer(entry, fail(WINDOW_CODE[response]));
    }

    const fault = this.#faults.take(req);
    if (fault) entry.fault = fault.kind;
    switch (fault?.kind) {
      case undefined:
        return this.#answer(entry, this.#execute(req, entry));
      case 'completion-code':
        return this.#answer(entry, fail(fault.code));
      case 'busy':
        return this.#answer(entry, fail(CC.NODE_BUSY));
      case 'no-response':
        if (fault.executed) this.#execute(req, entry);
        return { response: null };
      case 'late-response':
        return { ...this.#answer(entry, this.#execute(req, entry)), delayMs: fault.delayMs };
      case 'short-response':
      case 'cut-response': {
        const r = this.#execute(req, entry);
        const length = Math.max(0, Math.min(fault.length ?? Math.floor(r.data.length / 2), r.data.length));
        const out = this.#answer(entry, { completionCode: r.completionCode, data: r.data.slice(0, length) });
        if (fault.kind === 'cut-response') out.response.truncated = true;
        return out;
      }
      case 'garbled':
        this.#execute(req, entry);
        return this.#answer(entry, fail(CC.UNSPECIFIED));
      case 'reset':
        if (fault.executed) {
          this.#execute(req, entry);
          this.commit();
        }
        this.simulateReset(fault);
        return { response: null };
    }
  }

  #answer(entry: RecordEntry, r: Reply): { response: IpmiResponse; delayMs: number } {
    entry.completionCode = r.completionCode;
    entry.responseLength = r.data.length;
    return { response: { completionCode: r.completionCode, data: Uint8Array.from(r.data) }, delayMs: 0 };
  }

  #execute(req: NormalizedRequest, entry: RecordEntry): Reply {
    entry.executed = true;
    // §5.2: the BMC's commands all live on LUN 0.
    if (req.lun !== 0) return fail(CC.INVALID_FOR_LUN);
    if (req.netFn === NetFn.APP && (req.cmd === AppCmd.COLD_RESET || req.cmd === AppCmd.WARM_RESET)) {
      // §20.2/§20.3: acknowledged, then the BMC restarts and volatile settings are lost.
      if (req.data.length !== 0) return fail(CC.REQUEST_DATA_LENGTH_INVALID);
      this.simulateReset({ revertTo: 'non-volatile' });
      return fail(CC.OK);
    }
    const handler = HANDLERS[`${req.netFn}:${req.cmd}`];
    if (!handler) return fail(CC.INVALID_COMMAND);
    let changed = false;
    const ctx: CommandContext = {
      profile: this.profile,
      state: this.#state,
      changed: () => { changed = true; },
      hashPassword: (bytes, size) => hashPassword(bytes, size, this.#kdf),
    };
    const reply = handler(ctx, req.data);
    if (changed) {
      if (req.cmd === AppCmd.SET_USER_PASSWORD && ((req.data[1] ?? 0) & 0x03) === 2) {
        const slot = this.#state.users[(req.data[0] ?? 0) & 0x3f];
        if (slot) this.#known.set(slot.password.hash, Uint8Array.from(req.data.subarray(2)));
      }
      if (this.#commitMode === 'immediate') this.#nonVolatile = cloneState(this.#state);
      this.#forgetUnusedPasswords();
      this.#scheduleSave();
    }
    return reply;
  }

  /** Keeps password bytes (test view only) no longer than a live or committed slot holds them. */
  #forgetUnusedPasswords(): void {
    const live = new Set<string>();
    for (const st of [this.#state, this.#nonVolatile]) for (const u of st.users) if (u) live.add(u.password.hash);
    for (const [hash, bytes] of this.#known) {
      if (!live.has(hash)) {
        bytes.fill(0);
        this.#known.delete(hash);
      }
    }
  }

  #scheduleSave(): void {
    this.#dirty = true;
    const path = this.stateFile;
    if (!path) return;
    this.#saving = this.#saving.then(async () => {
      if (!this.#dirty) return;
      this.#dirty = false;
      try {
        await saveStateFile(path, { profile: this.profile.name, state: this.#state, nonVolatile: this.#nonVolatile });
      } catch (err) {
        this.#saveError = err;
      }
    });
  }

  /** Resolves once the state file reflects every change so far; rejects if a write failed. */
  async flush(): Promise<void> {
    await this.#saving;
    if (this.#saveError !== undefined) {
      const err = this.#saveError;
      this.#saveError = undefined;
      throw err;
    }
  }

  // ----- test controls -----

  /** Arms a scripted fault. */
  inject(spec: FaultSpec): void {
    this.#faults.add(spec);
  }

  /** Node busy (0xC0) for the next `times` matching requests. */
  busy(times = 1, match?: FaultMatch): void {
    this.inject({ match, times, action: { kind: 'busy' } });
  }

  /** Fails the nth matching request (1 = the next one) with `code`, without executing it. */
  failNth(nth: number, code: number, match?: FaultMatch): void {
    this.inject({ match, nth, action: { kind: 'completion-code', code } });
  }

  /** The next matching request is never answered. */
  noResponse(match?: FaultMatch, executed = false): void {
    this.inject({ match, action: { kind: 'no-response', executed } });
  }

  clearFaults(): void {
    this.#faults.clear();
  }

  get pendingFaults(): number {
    return this.#faults.pending;
  }

  /**
   * Resets the BMC now: volatile settings and uncommitted changes are lost (or
   * everything, with `factory`), and the next `window` requests meet a BMC
   * that is still starting.
   */
  simulateReset(opts: ResetOptions = {}): void {
    this.#resets++;
    if ((opts.revertTo ?? 'non-volatile') === 'factory') {
      this.#state = this.#factoryState();
      this.#nonVolatile = cloneState(this.#state);
    } else {
      this.#state = cloneState(this.#nonVolatile);
    }
    // §22.22: volatile channel access comes back from the non-volatile setting.
    for (const ca of Object.values(this.#state.channelAccess)) ca.volatile = { ...ca.nonVolatile };
    this.#nonVolatile = cloneState(this.#state);
    this.#forgetUnusedPasswords();
    const window = opts.window ?? 2;
    this.#window = window > 0 ? { remaining: window, response: opts.windowResponse ?? 'initializing' } : null;
    this.#scheduleSave();
  }

  /** Commits the present state to non-volatile storage (for `commit: 'deferred'`). */
  commit(): void {
    this.#nonVolatile = cloneState(this.#state);
    this.#scheduleSave();
  }

  setCommitMode(mode: 'immediate' | 'deferred'): void {
    this.#commitMode = mode;
  }

  /** Test reset: factory state, no faults, empty record, not in a reset window. */
  reset(): void {
    this.#state = this.#factoryState();
    this.#nonVolatile = cloneState(this.#state);
    this.#faults.clear();
    this.#record = [];
    this.#seq = 0;
    this.#window = null;
    this.#resets = 0;
    this.#forgetUnusedPasswords();
    this.#scheduleSave();
  }

  /** Times the BMC has reset (faults, Cold/Warm Reset), since creation or reset(). */
  get resets(): number {
    return this.#resets;
  }

  get inResetWindow(): boolean {
    return this.#window !== null;
  }

  /** What was sent, in order (copies; Set User Password data redacted). */
  get record(): RecordEntry[] {
    return this.#record.map((e) => ({ ...e, data: [...e.data] }));
  }

  clearRecord(): void {
    this.#record = [];
  }

  /** The whole user table, read directly from BMC state (slots 1..max). */
  users(): UserView[] {
    const out: UserView[] = [];
    for (const u of this.#state.users) {
      if (!u) continue;
      const bytes = u.password.isNull ? new Uint8Array(u.password.size) : this.#known.get(u.password.hash);
      out.push({
        id: u.id,
        name: nameText(u.name),
        nameBytes: [...u.name],
        fixedName: u.id <= this.profile.fixedNames,
        enabled: u.enabled,
        enableStatus: u.enableStatus,
        password: { size: u.password.size, isNull: u.password.isNull, hash: u.password.hash, ...(bytes ? { bytes: Uint8Array.from(bytes) } : {}) },
        access: structuredClone(u.access),
      });
    }
    return out;
  }

  user(id: number): UserView | undefined {
    return this.users().find((u) => u.id === id);
  }

  /** Whether user `id` has this password stored with this size (hash comparison, as Test Password does). */
  passwordMatches(id: number, password: string | Uint8Array, size: 16 | 20 = 16): boolean {
    const slot = this.#state.users[id];
    if (!slot || slot.password.size !== size) return false;
    return passwordMatches(slot.password, padPassword(password, size));
  }

  channelAccess(channel: number): ChannelAccessState | undefined {
    const ca = this.#state.channelAccess[channel];
    return ca ? structuredClone(ca) : undefined;
  }

  /** Everything tests compare for "fully applied or exactly as before". */
  snapshot(): { users: UserView[]; channelAccess: Record<number, ChannelAccessState> } {
    return { users: this.users(), channelAccess: structuredClone(this.#state.channelAccess) };
  }

  lanChannels(): number[] {
    return lanChannels(this.profile);
  }
}
