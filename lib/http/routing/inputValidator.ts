import type { ErrorObject, ValidateFunction } from 'ajv';
import type { OperationObject, ParameterObject, RequestBodyObject, SchemaObject } from 'openapi3-ts/oas31';
import { BadRequest, UnsupportedMediaType } from '../../errors.ts';
import { dialectQuery, POSTGREST_EXTENSION, POSTGREST_KEY_EXTENSION } from '../../postgrest/dialectInput.ts';
import type { NeutralRequest } from '../../ground/neutralRequest.ts';
import type { SchemaCompiler } from './schemaCompiler.ts';

export interface ValidatedInput {
  params: Record<string, unknown>;
  query: Record<string, unknown>;
  body: unknown;
}

export interface RawInput {
  params: Record<string, string>;
  query: URLSearchParams;
  contentType: string | undefined;
  body: Buffer | undefined;
  /** The request headers; a PostgREST-dialect operation reads the ones that change its answer. */
  headers?: NeutralRequest['headers'];
}

type Coerce = (raw: string, name: string) => unknown;

const INTEGER_TEXT = /^[+-]?\d+$/;

/**
 * Parameters arrive as text. Coerce strictly (no `1e3`, ` 1`, `1.0` as integers) so the error
 * names the field and what it must be; bounds are then checked by ajv from the spec.
 */
function coercerFor(schema: SchemaObject | undefined): Coerce {
  const type = Array.isArray(schema?.type) ? schema?.type[0] : schema?.type;
  if (type === 'integer') {
    return (raw, name) => {
      const value = Number(raw);
      if (!INTEGER_TEXT.test(raw)) throw new BadRequest(`${name} must be an integer`, name);
      if (!Number.isSafeInteger(value)) {
        throw new BadRequest(
          `${name} must be an integer between ${schema?.minimum ?? Number.MIN_SAFE_INTEGER} and ${schema?.maximum ?? Number.MAX_SAFE_INTEGER}`,
          name,
        );
      }
      return value;
    };
  }
  if (type === 'number') {
    return (raw, name) => {
      const value = Number(raw);
      if (raw.trim() === '' || !Number.isFinite(value)) throw new BadRequest(`${name} must be a number`, name);
      return value;
    };
  }
  if (type === 'boolean') {
    return (raw, name) => {
      if (raw === 'true') return true;
      if (raw === 'false') return false;
      throw new BadRequest(`${name} must be true or false`, name);
    };
  }
  return (raw) => raw;
}

function describeAjvError(errors: ErrorObject[] | null | undefined, location: string): BadRequest {
  const error = errors?.[0];
  // ajv always says why a validation failed; without a reason, the field is still named.
  if (!error) return new BadRequest(`${location} is invalid`, location);
  const path = error.instancePath.replace(/^\//, '').replace(/\//g, '.');
  if (error.keyword === 'additionalProperties') {
    const extra = String(error.params.additionalProperty);
    const field = location === 'body' ? (path ? `${path}.${extra}` : extra) : extra;
    return new BadRequest(`unknown ${location === 'body' ? 'body member' : `${location} parameter`} "${extra}"`, field);
  }
  if (error.keyword === 'required') {
    const missing = String(error.params.missingProperty);
    const field = path ? `${path}.${missing}` : missing;
    return new BadRequest(`${field} is required`, field);
  }
  const field = path || (location === 'body' ? 'body' : location);
  return new BadRequest(`${field} ${error.message ?? 'is invalid'}`, field);
}

interface ParameterSpec {
  name: string;
  coerce: Coerce;
}

function objectSchema(parameters: ParameterObject[]): object {
  return {
    type: 'object',
    additionalProperties: false,
    properties: Object.fromEntries(parameters.map((p) => [p.name, p.schema ?? {}])),
    required: parameters.filter((p) => p.required).map((p) => p.name),
  };
}

/** Validates path, query and body of one operation, compiled once from its spec entry. */
export class InputValidator {
  private readonly pathParams: ParameterSpec[];
  private readonly queryParams: Map<string, ParameterSpec>;
  private readonly validatePath: ValidateFunction;
  private readonly validateQuery: ValidateFunction;
  private readonly validateBody?: ValidateFunction;
  private readonly bodyRequired: boolean;
  /**
   * `x-postgrest`: the query string is PostgREST's grammar, parsed and checked against the table by
   * lib/postgrest/ (its refusals carry PGRST codes), and the body is any JSON the dialect checks.
   */
  readonly dialect: boolean;
  /** A dialect read's primary key (`x-postgrest-key`), to tell a point read from a scan. */
  readonly dialectKey: readonly string[] | undefined;

  constructor(operation: OperationObject, compiler: SchemaCompiler) {
    const parameters = (operation.parameters ?? []) as ParameterObject[];
    const inPath = parameters.filter((p) => p.in === 'path');
    const inQuery = parameters.filter((p) => p.in === 'query');
    this.pathParams = inPath.map((p) => ({ name: p.name, coerce: coercerFor(p.schema as SchemaObject) }));
    this.queryParams = new Map(inQuery.map((p) => [p.name, { name: p.name, coerce: coercerFor(p.schema as SchemaObject) }]));
    this.validatePath = compiler.compile(objectSchema(inPath));
    this.validateQuery = compiler.compile(objectSchema(inQuery), { useDefaults: true });
    const requestBody = operation.requestBody as RequestBodyObject | undefined;
    const bodySchema = requestBody?.content?.['application/json']?.schema;
    this.bodyRequired = requestBody?.required === true;
    this.dialect = (operation as Record<string, unknown>)[POSTGREST_EXTENSION] === true;
    this.dialectKey = (operation as Record<string, unknown>)[POSTGREST_KEY_EXTENSION] as string[] | undefined;
    if (bodySchema && !this.dialect) this.validateBody = compiler.compile(bodySchema);
  }

  validate(raw: RawInput): ValidatedInput {
    const params: Record<string, unknown> = {};
    for (const { name, coerce } of this.pathParams) {
      const encoded = raw.params[name] ?? '';
      let decoded: string;
      try {
        decoded = decodeURIComponent(encoded);
      } catch {
        throw new BadRequest(`${name} is not valid percent-encoding`, name);
      }
      params[name] = coerce(decoded, name);
    }
    if (!this.validatePath(params)) throw describeAjvError(this.validatePath.errors, 'path');

    if (this.dialect) return { params, query: { ...dialectQuery(raw.query, raw.headers ?? {}) }, body: this.parseBody(raw) };

    const query: Record<string, unknown> = {};
    for (const [name, value] of raw.query) {
      const spec = this.queryParams.get(name);
      if (!spec) throw new BadRequest(`unknown query parameter "${name}"`, name);
      if (name in query) throw new BadRequest(`${name} must be given at most once`, name);
      query[name] = spec.coerce(value, name);
    }
    if (!this.validateQuery(query)) throw describeAjvError(this.validateQuery.errors, 'query');

    return { params, query, body: this.parseBody(raw) };
  }

  private parseBody(raw: RawInput): unknown {
    if (!this.validateBody && !this.dialect) return undefined;
    const bytes = raw.body;
    if (!bytes || bytes.length === 0) {
      if (this.bodyRequired) throw new BadRequest('a JSON request body is required', 'body');
      return undefined;
    }
    const mediaType = raw.contentType?.split(';')[0]?.trim().toLowerCase();
    if (mediaType !== 'application/json') {
      throw new UnsupportedMediaType(`the request body must be application/json, got ${mediaType ? `"${mediaType}"` : 'no Content-Type'}`);
    }
    let body: unknown;
    try {
      body = JSON.parse(bytes.toString('utf8'));
    } catch {
      throw new BadRequest('the request body is not valid JSON', 'body');
    }
    if (this.validateBody && !this.validateBody(body)) throw describeAjvError(this.validateBody.errors, 'body');
    return body;
  }
}
