import type { OpenAPIObject, PathItemObject } from 'openapi3-ts/oas31';
import { handlers } from '../../functions/index.ts';
import type { Handler } from '../../lib/http/handler.ts';
import { type DialectInput, readCollection, writeCollection } from '../../lib/http/dialectHandlers.ts';
import { buildOpenApiDocument } from '../../openapi/document.ts';
import { dialectOperations } from '../../openapi/postgrestDialect.ts';
import { tableResponses } from '../../openapi/tableApi.ts';
import { GADGETS } from './gadgetsTable.ts';

/**
 * public.gadgets served in PostgREST's dialect at /gadgets, next to the service's own operations,
 * as `npm run add-table --write` serves a table: the document's entries and the handlers.
 */
export function gadgetsDocument(version: string): OpenAPIObject {
  const document = buildOpenApiDocument(version);
  const operations = dialectOperations(
    {
      path: '/gadgets',
      tag: 'gadgets',
      table: 'public.gadgets',
      itemSchema: 'Gadget',
      columns: GADGETS.columns.map((c) => c.name),
      primaryKey: GADGETS.primaryKey,
      operationIds: { read: 'readGadgets', create: 'createGadgets', update: 'updateGadgets', remove: 'deleteGadgets', replace: 'replaceGadgets' },
      cacheTtlSeconds: 30,
      maxRows: GADGETS.maxRows ?? 1000,
    },
    ['readGadgets?'],
  );
  const components = document.components ?? {};
  components.schemas = { ...components.schemas, Gadget: { type: 'object', description: 'One row of public.gadgets' } };
  // The built document adds Conflict only when one of its own operations refers to it; the writes added here do.
  components.responses = { ...tableResponses, ...components.responses };
  document.components = components;
  const paths = (document.paths ?? {}) as Record<string, PathItemObject>;
  for (const { path, method, operation } of operations) {
    paths[path] = { ...paths[path], [method]: { ...operation, security: [] } };
  }
  document.paths = paths;
  return document;
}

export const gadgetsHandlers: Readonly<Record<string, Handler>> = {
  ...handlers,
  readGadgets: (input: DialectInput, ctx) => readCollection(ctx, GADGETS, input),
  createGadgets: (input: DialectInput, ctx) => writeCollection(ctx, GADGETS, 'POST', input),
  updateGadgets: (input: DialectInput, ctx) => writeCollection(ctx, GADGETS, 'PATCH', input),
  deleteGadgets: (input: DialectInput, ctx) => writeCollection(ctx, GADGETS, 'DELETE', input),
  replaceGadgets: (input: DialectInput, ctx) => writeCollection(ctx, GADGETS, 'PUT', input),
};
