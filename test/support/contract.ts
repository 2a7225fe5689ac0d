import assert from 'node:assert/strict';
import type { ValidateFunction } from 'ajv';
import type { HeaderObject, OpenAPIObject, OperationObject, PathItemObject, ReferenceObject, ResponseObject } from 'openapi3-ts/oas31';
import { RouteTable } from '../../lib/http/routing/routeTable.ts';
import { createSchemaCompiler } from '../../lib/http/routing/schemaCompiler.ts';

export interface ObservedResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  /** Raw body text. */
  text: string;
}

interface OperationContract {
  operationId: string;
  responses: Map<string, { mediaTypes: Map<string, ValidateFunction>; headers: string[] }>;
}

const PROBLEM_MEDIA = 'application/problem+json';

/**
 * Checks a response against the OpenAPI document: the status must be declared by the operation,
 * the content type must be the declared one, and the body must validate against its schema.
 * Unmatched routes must answer with a valid problem body.
 */
export class ContractChecker {
  private readonly routes = new RouteTable<OperationContract>();
  private readonly problem: ValidateFunction;
  readonly seen = new Map<string, Set<number>>();

  constructor(readonly document: OpenAPIObject) {
    const compiler = createSchemaCompiler(document);
    const componentResponses = (document.components?.responses ?? {}) as Record<string, ResponseObject>;
    const componentHeaders = (document.components?.headers ?? {}) as Record<string, HeaderObject>;
    const resolve = (r: ResponseObject | ReferenceObject): ResponseObject =>
      '$ref' in r ? componentResponses[r.$ref.replace('#/components/responses/', '')]! : r;
    const resolveHeader = (h: HeaderObject | ReferenceObject): HeaderObject =>
      '$ref' in h && h.$ref ? componentHeaders[h.$ref.replace('#/components/headers/', '')]! : (h as HeaderObject);
    this.problem = compiler.compile({ $ref: '#/components/schemas/Problem' });

    for (const [template, item] of Object.entries(document.paths ?? {}) as Array<[string, PathItemObject]>) {
      for (const method of ['get', 'post', 'put', 'patch', 'delete'] as const) {
        const operation = item[method] as OperationObject | undefined;
        if (!operation) continue;
        const responses = new Map<string, { mediaTypes: Map<string, ValidateFunction>; headers: string[] }>();
        for (const [status, raw] of Object.entries(operation.responses ?? {})) {
          const response = resolve(raw as ResponseObject | ReferenceObject);
          const mediaTypes = new Map<string, ValidateFunction>();
          for (const [media, content] of Object.entries(response.content ?? {})) {
            mediaTypes.set(media, compiler.compile(content.schema ?? {}));
          }
          const required = Object.entries(response.headers ?? {})
            .filter(([, h]) => resolveHeader(h).required)
            .map(([name]) => name.toLowerCase());
          responses.set(status, { mediaTypes, headers: required });
        }
        this.routes.add(template, method, { operationId: operation.operationId!, responses });
      }
    }
  }

  check(method: string, url: string, response: ObservedResponse): void {
    const path = url.split('?')[0]!;
    const where = `${method} ${url} → ${response.status}`;
    const contentType = String(response.headers['content-type'] ?? '')
      .split(';')[0]!
      .trim();
    const match = this.routes.match(path);
    if (method === 'OPTIONS' && match) {
      // OPTIONS on a documented path: 204 with the methods it allows (and the CORS preflight answer).
      assert.equal(response.status, 204, `${where}: OPTIONS answers 204`);
      assert.ok(response.headers.allow, `${where}: OPTIONS lists the allowed methods`);
      return;
    }
    const operation = match?.methods.get(method === 'HEAD' ? 'GET' : method);
    if (!operation) {
      if (path === '/openapi.json' || path === '/docs' || path.startsWith('/docs/')) return;
      assert.equal(contentType, PROBLEM_MEDIA, `${where}: an unmatched route must answer with a problem`);
      assert.ok(this.problem(JSON.parse(response.text)), `${where}: invalid problem body ${response.text}`);
      return;
    }
    const statuses = this.seen.get(operation.operationId) ?? new Set<number>();
    statuses.add(response.status);
    this.seen.set(operation.operationId, statuses);

    const declared = operation.responses.get(String(response.status)) ?? operation.responses.get('default');
    assert.ok(declared, `${where}: status ${response.status} is not declared for ${operation.operationId}`);
    for (const header of declared.headers) {
      assert.ok(response.headers[header] !== undefined, `${where}: required header ${header} is missing`);
    }
    if (method === 'HEAD' || response.status === 304) return;
    if (response.status === 204) {
      assert.equal(response.text, '', `${where}: a 204 has no body`);
      return;
    }
    // A write answered with Prefer: return=minimal (201) carries neither body nor content type.
    if (response.text === '' && contentType === '' && method !== 'GET') return;
    const validate = declared.mediaTypes.get(contentType);
    assert.ok(validate, `${where}: content type "${contentType}" is not declared (declared: ${[...declared.mediaTypes.keys()].join(', ')})`);
    // text/csv is checked as the string it is.
    const body: unknown = contentType.startsWith('text/') ? response.text : JSON.parse(response.text);
    assert.ok(validate(body), `${where}: body does not match the spec: ${JSON.stringify(validate.errors)}\n${response.text.slice(0, 500)}`);
  }
}
