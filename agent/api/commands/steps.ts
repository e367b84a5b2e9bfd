/**
 * Clean, deploy and service steps, the way Ironic drives in-band steps
 * (research: ipa.md §1.2, openstack.md §1.6; Ironic 21.4
 * `agent_base.refresh_steps` / `_get_completed_command`, `conductor/steps.py`):
 *
 * - `<kind>.get_<kind>_steps` (sync) answers
 *   `{"<kind>_steps": {"<manager>": [step...]}, "hardware_manager_version": {...}}`.
 *   Ironic caches the steps per `interface` and validates a manual step's
 *   `args` against the step's `argsinfo` (unknown args are refused).
 * - `<kind>.execute_<kind>_step` (async) runs `params.step` and answers
 *   `{"<kind>_result": ..., "<kind>_step": step}`. Ironic matches the echoed
 *   step by interface and name only (`is_equivalent`), so the echo drops the
 *   args: they may hold the password.
 *
 * The one step offered is `deploy.set_bmc_credentials`, priority 0: it never
 * runs in automated cleaning, only when an operator asks for it in a manual
 * clean or service, as `{"interface": "deploy", "step": "set_bmc_credentials", "args": {...}}`.
 * Agent steps live on the `deploy` interface in Ironic, as IPA's hardware
 * manager steps do.
 */
import { lazyValidator } from '../../ajv.js';
import { CommandFailure, describeAjvError, ParamError, type CommandRegistry } from '../registry.js';
import type { CredentialsPort, SetCredentialsArgs } from '../ports.js';
import type { SealingKey } from '../../tls/sealing-key.js';
import { executeStepWire, getStepsWire, type ExecuteStepResultWire, type GetStepsResultWire, type StepDescriptorWire, type StepEchoWire, type StepKind } from '../wire.js';
import { explainParams, runSetCredentials, SET_CREDENTIALS_ARGSINFO, SET_CREDENTIALS_SCHEMA, toSetCredentialsArgs, type Redactor } from './bmc.js';

export type { StepKind };
export const STEP_KINDS: readonly StepKind[] = ['clean', 'deploy', 'service'];

export const HARDWARE_MANAGER = 'InbandBmcHardwareManager';
export const HARDWARE_MANAGER_VERSION = { inband_bmc_hardware_manager: '1.0' } as const;
export const SET_BMC_CREDENTIALS_STEP = 'set_bmc_credentials';
export const STEP_INTERFACE = 'deploy';

export function stepDescriptor(kind: StepKind): StepDescriptorWire {
  return {
    step: SET_BMC_CREDENTIALS_STEP,
    priority: 0,
    interface: STEP_INTERFACE,
    reboot_requested: false,
    ...(kind === 'deploy' ? {} : { abortable: false }),
    ...(kind === 'clean' ? { requires_ramdisk: true } : {}),
    argsinfo: SET_CREDENTIALS_ARGSINFO,
  };
}

interface StepParams {
  step: { interface: string; step: string; args?: Record<string, unknown> | null; [k: string]: unknown };
  node?: { uuid?: unknown; [k: string]: unknown } | null;
  [k: string]: unknown;
}

type StepPlan =
  | { kind: 'set-credentials'; args: SetCredentialsArgs; echo: StepEchoWire }
  | { kind: 'unknown'; echo: StepEchoWire; id: string }
  | { kind: 'refused'; echo: StepEchoWire; message: string };

// Ironic sends node, ports and <kind>_version alongside the step, and may add
// keys in later releases, so the envelope tolerates unknown keys; the step's
// own args are validated strictly.
const stepEnvelope = (kind: StepKind) => ({
  type: 'object',
  properties: {
    step: {
      type: 'object',
      properties: { interface: { type: 'string', minLength: 1 }, step: { type: 'string', minLength: 1 }, args: { type: ['object', 'null'] } },
      required: ['interface', 'step'],
    },
    node: { type: ['object', 'null'] },
    ports: { type: ['array', 'null'] },
    [`${kind}_version`]: { type: ['object', 'null'] },
  },
  required: ['step'],
});

/** The step as echoed in the result: everything but its args. */
function echoStep(step: StepParams['step']): StepEchoWire {
  const { args: _args, ...rest } = step;
  return rest;
}

export interface StepCommandDeps {
  credentials: CredentialsPort;
  redactor?: Redactor;
  /** The key password_sealed is opened with: the auto-TLS certificate's (agent/serve.ts); absent, a sealed password is refused. */
  sealingKey?: SealingKey;
}

export function registerStepCommands(registry: CommandRegistry, deps: StepCommandDeps): void {
  const argsValidator = lazyValidator(SET_CREDENTIALS_SCHEMA);
  for (const kind of STEP_KINDS) {
    registry.register<Record<string, unknown>, Record<string, unknown>, GetStepsResultWire<StepKind>>(`${kind}.get_${kind}_steps`, {
      mode: 'sync',
      // Ironic sends {node, ports}; nothing else is read.
      schema: { type: 'object', properties: { node: { type: ['object', 'null'] }, ports: { type: ['array', 'null'] } } },
      run: async () => getStepsWire(kind, HARDWARE_MANAGER, [stepDescriptor(kind)], { ...HARDWARE_MANAGER_VERSION }),
    });
    registry.register<StepParams, StepPlan, ExecuteStepResultWire<StepKind>>(`${kind}.execute_${kind}_step`, {
      mode: 'async',
      schema: stepEnvelope(kind),
      prepare: async (p) => {
        const echo = echoStep(p.step);
        if (p.step.interface !== STEP_INTERFACE || p.step.step !== SET_BMC_CREDENTIALS_STEP) {
          return { kind: 'unknown', echo, id: `${p.step.interface}.${p.step.step}` };
        }
        // Refused args are an HTTP 400 naming the field, except when they carry a plain password:
        // Ironic writes a step the agent refused with 4xx, args included, into the node's
        // last_error, which its API shows to anyone who may read the node. Those fail as a
        // command record instead, with the same message; either way nothing reaches the BMC.
        const args = p.step.args ?? {};
        const plain = typeof (args as Record<string, unknown>).password === 'string';
        const refuse = (message: string): StepPlan => {
          if (plain) return { kind: 'refused', echo, message };
          const i = message.indexOf(': ');
          throw new ParamError(message.slice(0, i), message.slice(i + 2));
        };
        const validate = await argsValidator();
        if (!validate(args)) return refuse(explainParams(args, 'params.step.args') ?? describeAjvError(validate.errors, 'params.step.args'));
        // Ironic sends the node with every step: a password sealed for another node is refused.
        const node = typeof p.node?.uuid === 'string' ? p.node.uuid : undefined;
        const sealed = { key: deps.sealingKey, ...(node !== undefined ? { node } : {}) };
        try {
          return { kind: 'set-credentials', args: toSetCredentialsArgs(args, deps.redactor, 'params.step.args', sealed), echo };
        } catch (err) {
          if (err instanceof ParamError) return refuse(err.message);
          throw err;
        }
      },
      summary: (plan: StepPlan) => `step ${plan.kind === 'unknown' ? plan.id : `${STEP_INTERFACE}.${SET_BMC_CREDENTIALS_STEP}`}${plan.kind === 'refused' ? ' (refused args)' : ''}`,
      run: async (plan: StepPlan) => {
        if (plan.kind === 'refused') {
          throw new CommandFailure(`INVALID_REQUEST: ${plan.message}; nothing was sent to the BMC`, 'InvalidCommandParamsError', 400, 'INVALID_REQUEST');
        }
        if (plan.kind === 'unknown') {
          // As IPA's dispatch does when no hardware manager has the step.
          throw new CommandFailure(`No hardware manager found to handle ${kind} step ${plan.id}: this agent provides only ${STEP_INTERFACE}.${SET_BMC_CREDENTIALS_STEP}`, 'HardwareManagerMethodNotFound', 404, 'UNKNOWN_STEP');
        }
        return executeStepWire(kind, await runSetCredentials(deps.credentials, plan.args), plan.echo);
      },
    });
  }
}
