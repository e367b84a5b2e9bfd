/**
 * The agent token: the shared secret the conductor puts in `?agent_token=` on
 * every command (research: IPA `validate_agent_token`). It comes from the first
 * lookup answer (`config.agent_token`, accepted only when >= 32 characters), or
 * is pre-set by the operator (`ipa-agent-token` on the kernel command line, a
 * file, the environment, a flag).
 *
 * Ironic shows a token once. A later lookup answers `******`; if the agent has
 * no token on file by then it can never authenticate the conductor again, so
 * it locks down: commands are refused for the life of the process (IPA logs
 * "FATAL" and stops serving its API in the same case).
 *
 * The comparison is constant-time over SHA-256 digests, so neither the length
 * nor a common prefix of a guess leaks through timing.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { MIN_TOKEN_LENGTH } from './config.js';
import type { Log } from './logger.js';

export { MIN_TOKEN_LENGTH };
/** What Ironic returns in place of a token it already handed out. */
export const MASKED_TOKEN = '******';

export type TokenSource = 'lookup' | 'kernel-cmdline' | 'config' | 'file' | 'env' | 'flag';

export interface TokenRedactor {
  register(value: string): void;
}

export class AgentTokenStore {
  private digest: Buffer | null = null;
  private value: string | null = null;
  private src: TokenSource | null = null;
  private locked: string | null = null;

  constructor(
    private readonly log?: Log,
    private readonly redactor?: TokenRedactor,
  ) {}

  /** True once a token is on file. */
  get hasToken(): boolean {
    return this.digest !== null;
  }

  get source(): TokenSource | null {
    return this.src;
  }

  /** Non-null (the reason) once the agent refuses all commands. */
  get lockdownReason(): string | null {
    return this.locked;
  }

  /** The token itself, for the heartbeat body only. */
  reveal(): string | null {
    return this.value;
  }

  /** Sets the token from operator configuration (kernel command line, file, env, flag). */
  setConfigured(token: string, source: Exclude<TokenSource, 'lookup'>): void {
    const t = token.trim();
    if (!t) throw new Error(`the agent token from ${source} is empty`);
    this.store(t, source);
    this.log?.info(`agent token set from ${source}`);
  }

  /**
   * Applies `config.agent_token` from a lookup answer. Returns what happened so
   * the caller can log or stop. Never throws on conductor input.
   */
  applyLookup(token: unknown): 'accepted' | 'kept' | 'lockdown' | 'ignored' {
    if (token === MASKED_TOKEN) {
      if (this.hasToken) return 'kept';
      this.lockdown('the conductor already handed out this node\'s agent token (lookup returned "******") and this agent has none on file; ' +
        'it cannot authenticate the conductor, so it refuses all commands. Power the node off (this resets the token in Ironic) or pass ipa-agent-token.');
      return 'lockdown';
    }
    if (typeof token !== 'string' || token.length === 0) return 'ignored';
    if (token.length < MIN_TOKEN_LENGTH) {
      this.log?.warn(`ignoring an agent token from lookup: ${token.length} characters is shorter than the required ${MIN_TOKEN_LENGTH}`);
      return 'ignored';
    }
    if (this.value === token) return 'kept';
    this.store(token, 'lookup');
    this.log?.info('agent token received from lookup');
    return 'accepted';
  }

  /** Refuses every command from now on (system.lockdown, or a lost token). */
  lockdown(reason: string): void {
    if (this.locked) return;
    this.locked = reason;
    this.log?.error(`FATAL: locking down: ${reason}`);
  }

  /** Constant-time comparison of a presented token against the one on file. False when none is on file. */
  check(presented: unknown): boolean {
    if (this.digest === null || typeof presented !== 'string' || presented.length === 0) return false;
    return timingSafeEqual(this.digest, sha256(presented));
  }

  private store(token: string, source: TokenSource): void {
    this.redactor?.register(token);
    this.value = token;
    this.digest = sha256(token);
    this.src = source;
  }
}

function sha256(s: string): Buffer {
  return createHash('sha256').update(s, 'utf8').digest();
}
