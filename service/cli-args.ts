/**
 * One argument parser for every command of both programs (the agent and the
 * conductor side), on node:util parseArgs. A command declares its options once
 * — name, type, short alias, allowed values, help — and gets from that one
 * declaration:
 *
 * - the parsed values ({@link parseCommand}), or a {@link UsageError} that names
 *   the flag (and, for a flag with allowed values, lists them) before anything
 *   moves: the callers exit 2 with it;
 * - its help ({@link formatHelp}), short enough for a screen.
 *
 * parseArgs tokenizes (`--name value`, `--name=value`, `-vh`, `--`); the
 * checks and the messages are ours, so both programs word a usage error alike.
 * Values stay text: what a value must be beyond its allowed values (a port, a
 * user name) is the caller's rule (the agent's option table, the credential
 * contract), not re-declared here.
 */
import { parseArgs } from 'node:util';

export interface OptionSpec {
  /** A switch, or an option that takes a value. */
  readonly type: 'boolean' | 'string';
  /** One-letter alias: `-v`. */
  readonly short?: string;
  /** May be given more than once; the values are kept in order. */
  readonly multiple?: boolean;
  /** The only values accepted; an other value is a usage error listing these. */
  readonly choices?: readonly string[];
  /** The value's name in the help (`--store-path FILE`). */
  readonly meta?: string;
  /** What it does, one line. */
  readonly help: string;
  /** A switch that also reads `--no-NAME` (false) and `--NAME=true|false|1|0|yes|no|on|off`. */
  readonly negatable?: boolean;
  /** The value when the flag is not given. */
  readonly default?: string | boolean;
}

export type OptionSpecs = Readonly<Record<string, OptionSpec>>;

/** A block of the help: options one per line with their help, or (brief) only their names, wrapped. */
export interface HelpSection {
  readonly title: string;
  readonly options: readonly string[];
  readonly brief?: boolean;
}

export interface CommandSpec<O extends OptionSpecs = OptionSpecs> {
  /** The words that name it after the program (`['user', 'list']`). */
  readonly name: readonly string[];
  /** Its synopsis lines, each after `usage: PROGRAM ` (the first one is what the program's help lists). */
  readonly usage: readonly string[];
  /** One line for the program's list of commands. */
  readonly summary: string;
  /** What it does, a few lines (already wrapped). */
  readonly about?: string;
  readonly options: O;
  /** How the help lays the options out; options in none of them are listed first, one per line. */
  readonly sections?: readonly HelpSection[];
  /** Lines after the options (environment, exit status). */
  readonly footer?: string;
}

/** A declared option's value: a switch's boolean, a value's text, a repeatable one's list (a spec not known literally: any). */
type ValueOf<S extends OptionSpec> = S extends { type: 'boolean' } ? boolean
  : S extends { type: 'string'; multiple: true } ? string[]
  : S extends { type: 'string'; multiple?: false | undefined } ? string
  : string | boolean | string[];

/** The parsed values: an option's type, present when given or defaulted. */
export type Values<O extends OptionSpecs> = {
  -readonly [K in keyof O]: O[K] extends { default: string | boolean } ? ValueOf<O[K]> : ValueOf<O[K]> | undefined;
};

export interface Parsed<O extends OptionSpecs> {
  values: Values<O>;
  positionals: string[];
  /** Options given on the command line (not defaulted), by name. */
  given: ReadonlySet<keyof O & string>;
  /** `-h` / `--help` was given: print the help, nothing else. */
  help: boolean;
}

/** A command line that cannot be what was meant; exit 2, before anything is sent, written or asked. */
export class UsageError extends Error {
  constructor(message: string, readonly flag?: string) {
    super(message);
    this.name = 'UsageError';
  }
}

const HELP: OptionSpec = { type: 'boolean', short: 'h', help: 'this help' };
const TRUE = new Set(['1', 'true', 'yes', 'on']);
const FALSE = new Set(['0', 'false', 'no', 'off']);

/** The declared flag meant, for "did you mean": the one it begins, else the closest (edit distance at most 2). */
function nearest(name: string, names: readonly string[]): string | undefined {
  const longer = names.filter((n) => n.startsWith(name));
  if (longer.length === 1) return longer[0];
  const d = (a: string, b: string): number => {
    const row = Array.from({ length: b.length + 1 }, (_, j) => j);
    for (let i = 1; i <= a.length; i++) {
      let prev = row[0]!;
      row[0] = i;
      for (let j = 1; j <= b.length; j++) {
        const cur = row[j]!;
        row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
        prev = cur;
      }
    }
    return row[b.length]!;
  };
  let best: string | undefined;
  let bestD = 3;
  for (const n of names) {
    const x = d(name, n);
    if (x < bestD) [best, bestD] = [n, x];
  }
  return best;
}

/**
 * Parses `argv` (the words after the command's name) against the command's
 * options. Throws {@link UsageError} naming the flag: an unknown option, a
 * missing value, a value not among the allowed ones, a value given to a switch.
 * `-h`/`--help` anywhere wins over every other problem.
 */
export function parseCommand<O extends OptionSpecs>(spec: Pick<CommandSpec<O>, 'options'>, argv: readonly string[]): Parsed<O> {
  const options = { ...spec.options, help: spec.options.help ?? HELP } as OptionSpecs;
  const config: Record<string, { type: 'boolean' | 'string'; short?: string; multiple?: boolean }> = {};
  for (const [name, o] of Object.entries(options)) config[name] = { type: o.type, ...(o.short ? { short: o.short } : {}), ...(o.multiple ? { multiple: true } : {}) };
  // strict: false so that every problem is ours to word (and to check after --help).
  const { tokens } = parseArgs({ args: [...argv], options: config, strict: false, allowPositionals: true, tokens: true });
  const values: Record<string, string | boolean | string[]> = {};
  const given = new Set<string>();
  const positionals: string[] = [];
  let problem: UsageError | undefined;
  let help = false;
  const fail = (e: UsageError): void => {
    problem ??= e;
  };
  for (const t of tokens) {
    if (t.kind === 'positional') {
      positionals.push(t.value);
      continue;
    }
    if (t.kind !== 'option') continue;
    const flag = t.rawName;
    let name = t.name;
    let o = options[name];
    let negated = false;
    if (!o && name.startsWith('no-') && options[name.slice(3)]?.negatable && t.value === undefined) {
      name = name.slice(3);
      o = options[name];
      negated = true;
    }
    if (!o) {
      const near = flag.startsWith('--') ? nearest(name, Object.keys(options)) : undefined;
      fail(new UsageError(`unknown option ${flag}${near ? ` (did you mean --${near}?)` : ''} (see --help)`, flag));
      continue;
    }
    const long = `--${name}`;
    if (name === 'help') {
      help = true;
      continue;
    }
    if (o.type === 'boolean') {
      let v = !negated;
      if (t.value !== undefined) {
        const text = t.value.trim().toLowerCase();
        // The value is not echoed: `--password-stdin=...` may hold a password.
        if (!o.negatable) {
          fail(new UsageError(`${long} takes no value`, long));
          continue;
        }
        if (TRUE.has(text) || text === '') v = true;
        else if (FALSE.has(text)) v = false;
        else {
          fail(new UsageError(`${long} is true or false (1/0, yes/no, on/off)`, long));
          continue;
        }
      }
      values[name] = v;
      given.add(name);
      continue;
    }
    // A value that is the next flag is a forgotten value, not a value (`--username --generate`);
    // one that starts with a single dash is a value (`--ipmi-retries -1` is then refused by its own rule).
    if (t.value === undefined || (!t.inlineValue && t.value.startsWith('--'))) {
      fail(new UsageError(`${flag === long ? long : `${flag} (${long})`} needs a value${o.meta ? ` (${o.meta})` : ''}`, long));
      continue;
    }
    if (o.choices && !o.choices.includes(t.value)) {
      fail(new UsageError(`${long} must be one of ${o.choices.join(', ')} (got "${t.value}")`, long));
      continue;
    }
    if (o.multiple) values[name] = [...((values[name] as string[] | undefined) ?? []), t.value];
    else values[name] = t.value;
    given.add(name);
  }
  if (!help && problem) throw problem;
  for (const [name, o] of Object.entries(options)) {
    if (values[name] === undefined && o.default !== undefined) values[name] = o.default;
  }
  return { values: values as Values<O>, positionals, given: given as ReadonlySet<keyof O & string>, help };
}

/** `--store file|barbican`, `--store-path FILE`, `-v, --trace`, `--[no-]insecure`. */
export function flagLabel(name: string, o: OptionSpec): string {
  const long = o.negatable ? `--[no-]${name}` : `--${name}`;
  const value = o.type === 'boolean' ? '' : ` ${o.choices ? o.choices.join('|') : (o.meta ?? 'VALUE')}`;
  return `${o.short ? `-${o.short}, ` : ''}${long}${value}`;
}

/** Words wrapped into lines of at most `width` columns, each after `indent`. */
export function wrap(words: readonly string[], width: number, indent: string): string[] {
  const lines: string[] = [];
  let line = indent;
  for (const w of words) {
    if (line.length > indent.length && line.length + 1 + w.length > width) {
      lines.push(line);
      line = indent;
    }
    line += line.length > indent.length ? ` ${w}` : w;
  }
  if (line.length > indent.length) lines.push(line);
  return lines;
}

const COLUMN = 28;

function optionLines(names: readonly string[], options: OptionSpecs): string[] {
  return names.map((n) => {
    const label = `  ${flagLabel(n, options[n]!)}`;
    const pad = label.length + 2 > COLUMN ? `${label}  ` : label.padEnd(COLUMN);
    return `${pad}${options[n]!.help}`;
  });
}

/**
 * The command's help: usage, what it does, its options (one per line, or by
 * name only in a brief section), the footer. `program` is what the usage lines
 * start with (`inband-agent`, `inband-agent conductor`).
 */
export function formatHelp(program: string, spec: CommandSpec): string {
  const options = { ...spec.options, help: spec.options.help ?? HELP } as OptionSpecs;
  const out: string[] = [];
  spec.usage.forEach((u, i) => out.push(`${i === 0 ? 'usage: ' : '       '}${program} ${u}`));
  if (spec.about) out.push('', spec.about);
  const placed = new Set((spec.sections ?? []).flatMap((s) => s.options));
  const own = Object.keys(options).filter((n) => !placed.has(n) && n !== 'help');
  // -h/--help is every command's; the program's help says so, and a line here would cost a screen line.
  out.push('', 'options:', ...optionLines(own, options));
  for (const s of spec.sections ?? []) {
    if (s.brief) {
      out.push(`${s.title}:`, ...wrap(s.options.map((n) => flagLabel(n, options[n]!)), 100, '  '));
    } else {
      out.push(`${s.title}:`, ...optionLines(s.options, options));
    }
  }
  if (spec.footer) out.push(spec.footer);
  return out.join('\n');
}

/**
 * The program's list of commands: each one's synopsis (its first usage line
 * without the bracketed options, which its own help tells) and summary.
 */
export function formatCommandList(program: string, specs: ReadonlyArray<Pick<CommandSpec, 'usage' | 'summary'>>, column = 50): string[] {
  const out: string[] = [];
  for (const s of specs) {
    const left = `  ${program} ${s.usage[0]!.replace(/ \[(--[^\]]*|options|fleet options)\]/g, '')}`;
    if (left.length + 2 <= column) out.push(`${left.padEnd(column)}${s.summary}`);
    else out.push(left, `${' '.repeat(column)}${s.summary}`);
  }
  return out;
}
