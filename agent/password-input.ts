/**
 * Reading a password the way operators expect: from a terminal, a prompt with
 * echo off (and a second prompt to confirm, since a mistyped BMC password is
 * only found out at the next login); from a pipe or file, its first line.
 * Never from an argument: argv is readable by every user in /proc/PID/cmdline
 * and lands in shell history.
 */
import type { Readable } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';

/** A TTY-backed stdin (node's tty.ReadStream); absent members mean "not a terminal". */
export type PasswordStdin = Readable & { isTTY?: boolean; setRawMode?: (raw: boolean) => unknown };

export class PasswordInputError extends Error {
  /** 'usage': the input was refused (exit 2); 'aborted': the user pressed Ctrl-C / Ctrl-D (exit 130 / 2). */
  constructor(message: string, readonly kind: 'usage' | 'aborted') {
    super(message);
  }
}

/**
 * Refuses every spelling that would put a password in argv. The value is never
 * echoed: it is the secret.
 */
export function refusePasswordInArgv(argv: readonly string[], stdinFlag: string): void {
  for (const a of argv) {
    if (a === '--') break;
    const name = a.indexOf('=') > 0 ? a.slice(0, a.indexOf('=')) : a;
    if (name === '--password' || name === '--passwd' || name === '--pass') {
      throw new PasswordInputError(`${name}: a password is never given as an argument (other users can read it in /proc and it stays in shell history); use ${stdinFlag} to type it at a prompt or pipe it on stdin`, 'usage');
    }
    if (name === stdinFlag && a.length > name.length) {
      throw new PasswordInputError(`${stdinFlag} takes no value (a password is never given as an argument); type it at the prompt or pipe it on stdin`, 'usage');
    }
  }
}

/** The first line of a stream (a pipe or file; agent/stdio.ts reads a plain fd without one), its bytes wiped after. */
export async function readLine(stdin: Readable): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of stdin) {
    chunks.push(Buffer.isBuffer(c) ? c : Buffer.from(String(c)));
    if (Buffer.concat(chunks).includes(0x0a)) break;
  }
  const all = Buffer.concat(chunks);
  const text = all.toString('utf8').split(/\r?\n/)[0] ?? '';
  all.fill(0);
  for (const c of chunks) c.fill(0);
  return text;
}

/**
 * One line typed with echo off. The terminal is put in raw mode, so the line
 * discipline neither echoes nor edits: Backspace/DEL, Ctrl-U, Enter, Ctrl-C and
 * Ctrl-D are handled here. The caller holds the terminal in raw mode.
 */
async function promptHidden(stdin: PasswordStdin, out: NodeJS.WritableStream, prompt: string): Promise<string> {
  out.write(prompt);
  const decoder = new StringDecoder('utf8');
  let typed = '';
  try {
    return await new Promise<string>((resolve, reject) => {
      const done = (err: Error | null, value = ''): void => {
        stdin.off('data', onData);
        stdin.off('end', onEnd);
        stdin.off('error', onError);
        if (err) reject(err);
        else resolve(value);
      };
      const onData = (chunk: Buffer | string): void => {
        for (const ch of decoder.write(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk))) {
          if (ch === '\r' || ch === '\n') return done(null, typed);
          if (ch === '\u0003') return done(new PasswordInputError('interrupted at the password prompt; nothing was changed', 'aborted'));
          if (ch === '\u0004') {
            if (!typed) return done(new PasswordInputError('end of input at the password prompt; nothing was changed', 'usage'));
            continue;
          }
          if (ch === '\u007f' || ch === '\b') {
            typed = [...typed].slice(0, -1).join('');
            continue;
          }
          if (ch === '\u0015') {
            typed = '';
            continue;
          }
          typed += ch;
        }
      };
      const onEnd = (): void => done(new PasswordInputError('end of input at the password prompt; nothing was changed', 'usage'));
      const onError = (e: Error): void => done(e);
      stdin.on('data', onData);
      stdin.once('end', onEnd);
      stdin.once('error', onError);
      stdin.resume();
    });
  } finally {
    stdin.pause();
    // Enter was not echoed either: end the prompt's line.
    out.write('\n');
  }
}

export interface ReadPasswordOptions {
  stdin: PasswordStdin;
  /** Where prompts go (stderr, so that stdout stays the command's result). */
  prompt: NodeJS.WritableStream;
  /** The flag named in errors. */
  flag: string;
  /** Ask twice on a terminal and refuse a mismatch (when setting a password). */
  confirm: boolean;
  /** What is being typed, for the prompt. */
  label?: string;
}

/** The password: prompted for (echo off) on a terminal, else the first line of stdin. */
export async function readPassword(opts: ReadPasswordOptions): Promise<string> {
  const label = opts.label ?? 'BMC password';
  const tty = opts.stdin.isTTY === true && typeof opts.stdin.setRawMode === 'function';
  if (!tty) {
    const line = await readLine(opts.stdin);
    if (!line) throw new PasswordInputError(`${opts.flag}: stdin gave an empty password`, 'usage');
    return line;
  }
  // Echo goes off before the first prompt is shown and stays off until the last
  // answer is read: keys typed (or pasted) ahead of a prompt are never echoed.
  opts.stdin.setRawMode!(true);
  try {
    const first = await promptHidden(opts.stdin, opts.prompt, `${label}: `);
    if (!first) throw new PasswordInputError(`${opts.flag}: an empty password was typed; nothing was changed`, 'usage');
    if (opts.confirm) {
      const again = await promptHidden(opts.stdin, opts.prompt, `Retype ${label}: `);
      if (again !== first) throw new PasswordInputError(`${opts.flag}: the two passwords typed do not match; nothing was changed`, 'usage');
    }
    return first;
  } finally {
    opts.stdin.setRawMode!(false);
  }
}
