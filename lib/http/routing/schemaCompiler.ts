import { Ajv2020 } from 'ajv/dist/2020.js';
import type { ValidateFunction } from 'ajv';
import addFormats from 'ajv-formats';
import type { OpenAPIObject } from 'openapi3-ts/oas31';

const SPEC_ID = 'openapi';
const COMPONENT_REF = /^#\/components\/schemas\//;

/** OpenAPI refs point into the document; ajv sees the component schemas as `$defs` of one schema. */
function rewriteRefs(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(rewriteRefs);
  if (value === null || typeof value !== 'object') return value;
  const out: Record<string, unknown> = {};
  for (const [key, child] of Object.entries(value)) {
    out[key] = key === '$ref' && typeof child === 'string' ? child.replace(COMPONENT_REF, `${SPEC_ID}#/$defs/`) : rewriteRefs(child);
  }
  return out;
}

export interface SchemaCompiler {
  /** Compile a schema from the document (it may reference `#/components/schemas/...`). */
  compile(schema: object, options?: { useDefaults?: boolean }): ValidateFunction;
}

/**
 * One ajv instance per document, compiled at start-up (never per request). `useDefaults` fills in
 * parameter defaults from the spec, so handlers receive complete input.
 */
export function createSchemaCompiler(document: OpenAPIObject): SchemaCompiler {
  const make = (useDefaults: boolean) => {
    const ajv = new Ajv2020({ allErrors: false, strict: true, useDefaults });
    // Formats generated table operations declare (uuid, date, date-time): checked, not ignored.
    addFormats.default(ajv, ['uuid', 'date', 'date-time']);
    ajv.addSchema({ $id: SPEC_ID, $defs: rewriteRefs(document.components?.schemas ?? {}) as object });
    return ajv;
  };
  const plain = make(false);
  const withDefaults = make(true);
  return {
    compile(schema, options = {}) {
      return (options.useDefaults ? withDefaults : plain).compile(rewriteRefs(schema) as object);
    },
  };
}
