/**
 * Every command of the conductor side, declared once for the shared parser
 * (service/cli-args.ts): usage, what it does, options. cli.ts, serve.ts and
 * fleet-cli.ts parse with these; the help of each is printed from them.
 */
import { formatHelp, type CommandSpec, type OptionSpecs } from '../service/cli-args.js';
import { LOG_FORMAT_CHOICES } from '../service/log-line.js';

export const PROGRAM = 'inband-agent conductor';

const ENV = 'environment: IRONIC_AUTH_TOKEN, BARBICAN_AUTH_TOKEN (else OS_AUTH_TOKEN); tokens never in arguments';

/** What both programs take: the log line format (service/log-line.ts). */
const LOG = {
  'log-format': { type: 'string', choices: LOG_FORMAT_CHOICES, help: 'log lines: text on a terminal, JSON otherwise (auto)' },
} as const satisfies OptionSpecs;

const STORE = {
  store: { type: 'string', choices: ['file', 'barbican'], default: 'file', help: 'where generated passwords live (default file)' },
  'store-path': { type: 'string', meta: 'FILE', help: 'the file store (default $XDG_STATE_HOME/inband-conductor/secrets.json)' },
  'barbican-url': { type: 'string', meta: 'URL', help: 'Barbican API (with --store barbican)' },
  'barbican-project-id': { type: 'string', meta: 'ID', help: 'X-Project-Id for Barbican without Keystone' },
} as const satisfies OptionSpecs;

const USERS = {
  username: { type: 'string', meta: 'U', default: 'ironic', help: 'the BMC user pair\'s first user (default ironic; the second is U_b)' },
  'username-b': { type: 'string', meta: 'U2', help: 'the pair\'s second user' },
} as const satisfies OptionSpecs;

const ROTATE_OPTIONS = {
  'ironic-url': { type: 'string', meta: 'URL', help: 'Ironic API (required)' },
  ...USERS,
  ...STORE,
  'records-dir': { type: 'string', meta: 'DIR', help: 'where rotation records go (default next to the file store)' },
  'keep-previous': { type: 'boolean', help: 'leave the previous BMC user enabled' },
  'clean-timeout': { type: 'string', meta: 'S', default: '1800', help: 'seconds to wait for the clean (default 1800)' },
  ipmitool: { type: 'string', meta: 'PATH', help: 'ipmitool binary (default /usr/bin/ipmitool)' },
  'agent-cert': { type: 'string', meta: 'FILE', help: 'the agent\'s TLS certificate to seal to (default: Ironic\'s pin)' },
  'allow-plain-args': { type: 'boolean', help: 'no agent certificate: plain step args (Ironic keeps them; warned)' },
  ...LOG,
} as const satisfies OptionSpecs;

/** The fleet run's own options (fleet.ts); any of them, or several NODEs, makes `rotate` a fleet run. */
export const FLEET_OPTIONS = {
  all: { type: 'boolean', help: 'every node, narrowed by --driver, --resource-class, --provision-state' },
  driver: { type: 'string', meta: 'D', help: 'with --all: only nodes of this driver' },
  'resource-class': { type: 'string', meta: 'RC', help: 'with --all: only nodes of this resource class' },
  'provision-state': { type: 'string', meta: 'S', help: 'with --all: only nodes in this provision state' },
  concurrency: { type: 'string', meta: 'N', help: 'nodes at once (default 8)' },
  'bmc-interval': { type: 'string', meta: 'S', help: 'seconds between two sessions to the same BMC (default 1)' },
  'initial-password-stdin': { type: 'boolean', help: 'stdin: the enrolment password, for nodes the store has none for' },
  'no-in-band': { type: 'boolean', help: 'never clean a node; report it as needing attention' },
  'state-dir': { type: 'string', meta: 'DIR', help: 'per-node engine journals (default next to the file store)' },
  'new-run': { type: 'boolean', help: 'start over even if the last run was stopped before its end' },
  json: { type: 'boolean', help: 'the result as JSON on stdout (no table)' },
} as const satisfies OptionSpecs;

const fleetNames = Object.keys(FLEET_OPTIONS);
const rotateNames = Object.keys(ROTATE_OPTIONS);

export const ROTATE = {
  name: ['rotate'],
  usage: ['rotate NODE --ironic-url URL [options]', 'rotate (NODE... | --all [filters]) --ironic-url URL [fleet options]'],
  summary: 'rotate a node\'s BMC password via Ironic',
  about: `A new password for the BMC user Ironic does not hold (U and U_b alternate), set in-band by the
agent in a manual clean, proven over lanplus, given to Ironic; the previous user is disabled.`,
  options: { ...ROTATE_OPTIONS, ...FLEET_OPTIONS },
  sections: [
    { title: 'store options (default: the file store)', options: Object.keys(STORE), brief: true },
    { title: `fleet options (${PROGRAM} fleet --help)`, options: fleetNames, brief: true },
  ],
  footer: `${ENV}\nexit: 0 rotated, 3 rotated with warnings, 1 failed, 2 usage`,
} as const satisfies CommandSpec;

export const FLEET = {
  name: ['fleet'],
  usage: ['fleet (NODE... | --all [filters]) --ironic-url URL [options]'],
  summary: 'rotate many nodes, out-of-band first',
  about: `Per node: out-of-band when the credential Ironic holds logs in (no reboot, any provision
state), in-band (rotate's clean) when it does not and the node may be cleaned, else reported
as needing attention. Started again with the same selection, a stopped run goes on.`,
  options: { ...ROTATE_OPTIONS, ...FLEET_OPTIONS },
  sections: [{ title: `as rotate (${PROGRAM} rotate --help)`, options: rotateNames, brief: true }],
  footer: `${ENV}\nexit: 0 all rotated, 3 with warnings, 1 a node failed or needs attention, 2 usage`,
} as const satisfies CommandSpec;

export const SERVE = {
  name: ['serve'],
  usage: ['serve --ironic-url URL [options]'],
  summary: 'discovery service and rotation passthru',
  about: `Discovery: answers an unknown node's agent (POST /v1/continue) with a fresh BMC password
over TLS, proves it over lanplus, enrolls or updates the node in Ironic. With
CONDUCTOR_AUTH_TOKEN set, also the rotation passthru (vendor_passthru set_bmc_credentials).`,
  options: {
    'ironic-url': { type: 'string', meta: 'URL', help: 'Ironic API (required)' },
    listen: { type: 'string', meta: 'HOST:PORT', default: '0.0.0.0:5050', help: 'default 0.0.0.0:5050 (port 0: any free port)' },
    'tls-cert-file': { type: 'string', meta: 'F', help: 'the service\'s certificate, with --tls-key-file (default: self-signed)' },
    'tls-key-file': { type: 'string', meta: 'F', help: 'its private key' },
    'tls-cert-out': { type: 'string', meta: 'FILE', help: 'where a self-signed certificate goes (default next to the store)' },
    'tls-name': { type: 'string', multiple: true, meta: 'NAME', help: 'extra name for the self-signed certificate (repeatable)' },
    ...USERS,
    'inspector-url': { type: 'string', meta: 'URL', help: 'forward inventories to ironic-inspector too' },
    'bmc-port': { type: 'string', meta: 'N', default: '623', help: 'the BMC\'s RMCP+ port (default 623)' },
    'ipmi-cipher-suite': { type: 'string', meta: 'N', default: '3', help: 'for the proof and driver_info (default 3)' },
    ...STORE,
    'records-dir': { type: 'string', meta: 'DIR', help: 'where discovery records go (default next to the file store)' },
    'result-timeout': { type: 'string', meta: 'S', default: '1800', help: 'how long to wait for an agent\'s result (default 1800)' },
    'max-pending': { type: 'string', meta: 'N', default: '64', help: 'answered discoveries waiting for their agent (default 64)' },
    'max-pending-per-source': { type: 'string', meta: 'N', default: '4', help: '... from one source address (default 4)' },
    'inventories-per-minute': { type: 'string', meta: 'N', default: '20', help: 'per source address (default 20, bursts of 10)' },
    ipmitool: { type: 'string', meta: 'PATH', help: 'ipmitool binary (default /usr/bin/ipmitool)' },
    ...LOG,
  },
  sections: [
    { title: 'TLS (default: a self-signed certificate for --tls-name NAMEs, written to --tls-cert-out)', options: ['tls-cert-file', 'tls-key-file', 'tls-cert-out', 'tls-name'], brief: true },
    { title: 'store options (default: the file store)', options: Object.keys(STORE), brief: true },
    { title: 'limits (defaults 1800 s, 64, 4 and 20 a minute in bursts of 10)', options: ['result-timeout', 'max-pending', 'max-pending-per-source', 'inventories-per-minute'], brief: true },
  ],
  footer: 'environment: IRONIC_AUTH_TOKEN, BARBICAN_AUTH_TOKEN (else OS_AUTH_TOKEN), CONDUCTOR_AUTH_TOKEN',
} as const satisfies CommandSpec;

/** The conductor side's commands, in the order its help lists them. */
export const CONDUCTOR_COMMANDS: readonly CommandSpec[] = [ROTATE, FLEET, SERVE];

export function helpOf(spec: CommandSpec): string {
  return formatHelp(PROGRAM, spec);
}

/** `inband-agent conductor --help`. */
export function topHelp(): string {
  return [
    ...CONDUCTOR_COMMANDS.map((c, i) => `${i === 0 ? 'usage: ' : '       '}${PROGRAM} ${c.usage[0]}`),
    '',
    'commands:',
    ...CONDUCTOR_COMMANDS.map((c) => `  ${c.name.join(' ').padEnd(8)} ${c.summary}`),
    '',
    `"${PROGRAM} COMMAND --help" tells a command's options.`,
    ENV,
  ].join('\n');
}
