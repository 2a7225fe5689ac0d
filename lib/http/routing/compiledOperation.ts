import type { OpenAPIObject, OperationObject, PathItemObject } from 'openapi3-ts/oas31';
import { CACHE_INVALIDATES_EXTENSION, CACHE_TTL_EXTENSION, READ_FROM_EXTENSION, type ReadFrom } from './operationExtensions.ts';
import type { Handler } from '../handler.ts';
import { InputValidator } from './inputValidator.ts';
import { createSchemaCompiler } from './schemaCompiler.ts';

const HTTP_METHODS = ['get', 'put', 'post', 'delete', 'patch', 'options', 'head'] as const;

/** One operation of the OpenAPI document, paired with its handler and everything the router needs per request. */
export interface CompiledOperation {
  operationId: string;
  method: string;
  template: string;
  handler: Handler;
  validator: InputValidator;
  cacheTtlSeconds: number;
  /** Cache key prefix templates a successful call of this (write) operation makes stale. */
  invalidates: readonly string[];
  /**
   * Declares `security`: the authenticate step (lib/auth/) identifies the caller first, and with
   * LAKEBASE_ACCESS=user the handler runs as them, on their own connections.
   */
  guarded: boolean;
  /** Changes data (not GET / HEAD): AUTH_WRITERS applies. */
  write: boolean;
  /** `x-read-from`: whether a read replica, when configured, may answer it. */
  readFrom: ReadFrom;
}

/** Pairs every operation in the document with its handler; a missing pair is a start-up error. */
export function compileOperations(document: OpenAPIObject, handlers: Readonly<Record<string, Handler>>): CompiledOperation[] {
  const compiler = createSchemaCompiler(document);
  const compiled: CompiledOperation[] = [];
  for (const [template, item] of Object.entries(document.paths ?? {}) as Array<[string, PathItemObject]>) {
    for (const method of HTTP_METHODS) {
      const operation = item[method] as (OperationObject & Record<string, unknown>) | undefined;
      if (!operation) continue;
      const operationId = operation.operationId;
      if (!operationId) throw new Error(`${method.toUpperCase()} ${template} has no operationId`);
      const handler = handlers[operationId];
      if (!handler) throw new Error(`No handler in functions/ for operation ${operationId}`);
      compiled.push({
        operationId,
        method: method.toUpperCase(),
        template,
        handler,
        validator: new InputValidator(operation, compiler),
        cacheTtlSeconds: Number(operation[CACHE_TTL_EXTENSION] ?? 0),
        invalidates: (operation[CACHE_INVALIDATES_EXTENSION] as string[] | undefined) ?? [],
        guarded: Array.isArray(operation.security) && operation.security.length > 0,
        write: method !== 'get' && method !== 'head',
        readFrom: readFromOf(operation, method, template),
      });
    }
  }
  const described = new Set(compiled.map((op) => op.operationId));
  const orphan = Object.keys(handlers).find((id) => !described.has(id));
  if (orphan) throw new Error(`Handler ${orphan} has no operation in the OpenAPI document`);
  return compiled;
}

/** `x-read-from`, checked: only a GET may be sent to a read-only server. */
function readFromOf(operation: Record<string, unknown>, method: string, template: string): ReadFrom {
  const declared = operation[READ_FROM_EXTENSION] ?? 'primary';
  if (declared !== 'replica' && declared !== 'primary')
    throw new Error(`${method.toUpperCase()} ${template}: ${READ_FROM_EXTENSION} must be replica or primary`);
  if (declared === 'replica' && method !== 'get')
    throw new Error(`${method.toUpperCase()} ${template}: only a GET may declare ${READ_FROM_EXTENSION}: replica`);
  return declared;
}
