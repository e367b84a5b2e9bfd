/**
 * ajv's standalone validation code for the config schema (agent/config.ts
 * configSchema()), as an ES module that stands in for agent/config-validator.ts
 * in the bundle: scripts/bundle.mjs calls {@link generateConfigValidator} at
 * every build, so the generated code always matches the option table and is
 * never kept in the source tree. The bundled CLI and daemon then validate
 * their config without loading ajv's compiler.
 */
import { Ajv, type ValidateFunction } from 'ajv';
import standalone from 'ajv/dist/standalone/index.js';
import { AJV_OPTIONS } from '../ajv.js';
import { configSchema } from '../config.js';

export function generateConfigValidator(): string {
  // The same options as agent/config-validator.ts, plus ESM source output.
  const ajv = new Ajv({ ...AJV_OPTIONS, code: { source: true, esm: true, lines: true } });
  const validate = ajv.compile(configSchema());
  // ajv/dist/standalone is CommonJS: under ESM the function may sit on `.default`.
  type Gen = (a: Ajv, v: ValidateFunction) => string;
  const gen = ((standalone as unknown as { default?: Gen }).default ?? standalone) as unknown as Gen;
  const code = gen(ajv, validate).replace(/^"use strict";\n?/, '').replace(/^export const validate = validate0;\n?/m, '').replace(/^export default validate0;\n?/m, '');
  return [
    '// Generated at build time by agent/tools/gen-config-validator.ts from agent/config.ts configSchema().',
    code,
    'export function configValidator() { return validate0; }',
    '',
  ].join('\n');
}
