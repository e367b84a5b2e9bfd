/**
 * The one ajv instance the agent uses for command params. Schemas are static
 * and covered by tests, so ajv's meta-schema validation of each schema is
 * off: it costs ~40 ms and finds nothing at run time. Strict mode still
 * rejects unknown keywords when a schema is compiled.
 *
 * ajv itself is imported on the first command that needs a validator, not at
 * start-up: its ~60 CommonJS modules cost ~40–80 ms and ~4 MiB of heap before
 * the API could answer, and most agents only ever serve /v1/status and a
 * handful of commands. (The config's validator, agent/config-validator.ts,
 * uses the same options.)
 */
import type { Ajv, Options, ValidateFunction } from 'ajv';

export const AJV_OPTIONS: Readonly<Options> = Object.freeze({ allErrors: false, strict: true, validateSchema: false });

let instance: Promise<Ajv> | null = null;

export function ajv(): Promise<Ajv> {
  // ajv is CommonJS: its module.exports is what both Node and the bundle hand over as `default`.
  instance ??= import('ajv').then(({ default: { Ajv } }) => new Ajv({ ...AJV_OPTIONS }));
  return instance;
}

/** Compiles `schema` on first call and resolves to the same function afterwards; it narrows what passes to `T`. */
export function lazyValidator<T = unknown>(schema: object): () => Promise<ValidateFunction<T>> {
  let fn: Promise<ValidateFunction<T>> | null = null;
  return () => (fn ??= ajv().then((a) => a.compile<T>(schema)));
}
