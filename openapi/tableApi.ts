import type { OperationObject, ReferenceObject, ResponseObject, SchemaObject, TagObject } from 'openapi3-ts/oas31';

/**
 * The contract of one table served by `npm run add-table` (openapi/<name>.ts): its tag, schemas and
 * operations, merged into the document by openapi/document.ts. A generated file is ordinary source:
 * edit it like the hand-written trips contract.
 */
export interface TableApi {
  tag: TagObject;
  schemas: Record<string, SchemaObject>;
  operations: Array<{ path: string; method: 'get' | 'post' | 'patch' | 'delete' | 'put'; operation: OperationObject & { operationId: string } }>;
}

export const errorRef = (
  name: 'BadRequest' | 'NotFound' | 'Conflict' | 'PayloadTooLarge' | 'UnsupportedMediaType' | 'Forbidden' | 'InternalError' | 'Unavailable' | 'Timeout',
): ReferenceObject => ({ $ref: `#/components/responses/${name}` });

export const schemaRef = (name: string): ReferenceObject => ({ $ref: `#/components/schemas/${name}` });

/** What every generated database operation may also answer (as for the trips). */
export const tableDatabaseErrors = {
  '400': errorRef('BadRequest'),
  '403': errorRef('Forbidden'),
  '500': errorRef('InternalError'),
  '503': errorRef('Unavailable'),
  '504': errorRef('Timeout'),
};

/**
 * What a generated write may also answer: its body refused before or by the database.
 * @public for the contracts `npm run add-table --write` generates
 */
export const tableWriteErrors = {
  ...tableDatabaseErrors,
  '409': errorRef('Conflict'),
  '413': errorRef('PayloadTooLarge'),
  '415': errorRef('UnsupportedMediaType'),
};

/** Component responses the generated operations add to the document. */
export const tableResponses: Record<string, ResponseObject> = {
  Conflict: {
    description: 'The database refused the row: it repeats a unique key, or a foreign key does not match (or still references it); `field` names a column',
    content: {
      'application/problem+json': {
        schema: schemaRef('Problem'),
        example: {
          type: '/problems/conflict',
          title: 'Conflict',
          status: 409,
          field: 'email',
          detail: 'A row with the same email already exists (constraint customers_email_key)',
        },
      },
    },
  },
};

export const tableSchemas: Record<string, SchemaObject> = {
  RowCount: {
    type: 'object',
    required: ['count'],
    additionalProperties: false,
    properties: { count: { type: 'integer', minimum: 0, description: 'Rows matching the filters' } },
    examples: [{ count: 200000 }],
  },
};
