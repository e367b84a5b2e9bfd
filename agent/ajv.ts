/**
 * The one ajv instance the agent uses for command params. Schemas are static
 * and covered by tests, so ajv's meta-schema validation of each schema is
 * off: it costs ~40 ms and finds nothing at run time. Strict mode still
 * rejects unknown keywords when a schema is compiled.
 *
 * ajv itself is imported on the first command that needs a validator, not at
 * start-up: its ~60 CommonJS modules cost ~40–80 ms and ~4 MiB of heap before
 * the API could answer, and most agents only ever serve /v1/status and a
 * handful of commands. (The config is checked by ahead-of-time standalone
 * code, agent/config-validator.generated.ts, which needs no ajv at all.)
 */
import type { Ajv, ValidateFunction } from 'ajv';

let instance: Promise<Ajv> | null = null;

export function ajv(): Promise<Ajv> {
  instance ??= import('ajv').then(({ Ajv }) => new Ajv({ allErrors: false, strict: true, validateSchema: false }));
  return instance;
}

/** Compiles `schema` on first call and resolves to the same function afterwards; it narrows what passes to `T`. */
export function lazyValidator<T = unknown>(schema: object): () => Promise<ValidateFunction<T>> {
  let fn: Promise<ValidateFunction<T>> | null = null;
  return () => (fn ??= ajv().then((a) => a.compile<T>(schema)));
}
