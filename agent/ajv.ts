/**
 * The one ajv instance the agent uses (config, command params). Schemas are
 * static and covered by tests, so ajv's meta-schema validation of each schema
 * is off: it costs ~40 ms at start-up and finds nothing at run time. Strict
 * mode still rejects unknown keywords when a schema is compiled.
 */
import { Ajv, type ValidateFunction } from 'ajv';

let instance: Ajv | null = null;

export function ajv(): Ajv {
  instance ??= new Ajv({ allErrors: false, strict: true, validateSchema: false });
  return instance;
}

/** Compiles `schema` on first call and returns the same function afterwards. */
export function lazyValidator(schema: object): () => ValidateFunction {
  let fn: ValidateFunction | null = null;
  return () => (fn ??= ajv().compile(schema));
}
