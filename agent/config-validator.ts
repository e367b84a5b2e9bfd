/**
 * The config's validator: ajv compiles configSchema() (agent/config.ts) on
 * first use, with the agent's ajv options (agent/ajv.ts).
 *
 * The build step (scripts/bundle.mjs) replaces this module in the bundle with
 * ajv's standalone code for the same schema, generated at build time
 * (agent/tools/gen-config-validator.ts), so the built CLI and daemon validate
 * their config without loading ajv: importing and running its compiler costs
 * ~50 ms before a command or the API could start. Nothing generated is kept in
 * the source tree; run from dist/ (tsc only), this module is what runs.
 */
import { Ajv, type ValidateFunction } from 'ajv';
import { AJV_OPTIONS } from './ajv.js';

let compiled: ValidateFunction | undefined;

export function configValidator(schema: () => object): ValidateFunction {
  compiled ??= new Ajv({ ...AJV_OPTIONS }).compile(schema());
  return compiled;
}
