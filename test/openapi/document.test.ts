import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import type { OperationObject, PathItemObject } from 'openapi3-ts/oas31';
import { handlers } from '../../functions/index.ts';
import { loadConfig } from '../../lib/ground/config.ts';
import type { Context } from '../../lib/http/serviceContext.ts';
import { createRouter } from '../../lib/http/router.ts';
import { buildOpenApiDocument } from '../../openapi/document.ts';
import { captureLogs } from '../support/logCapture.ts';
import { apiService } from '../../functions/index.ts';

const document = buildOpenApiDocument('0.0.0-test');
const fakeContext = { config: loadConfig({}), logger: captureLogs().logger, version: '0.0.0-test' } as unknown as Context;

function operationIds(): string[] {
  return Object.values(document.paths ?? {}).flatMap((item: PathItemObject) =>
    (['get', 'post', 'put', 'patch', 'delete'] as const).flatMap((m) =>
      (item[m] as OperationObject | undefined)?.operationId ? [(item[m] as OperationObject).operationId!] : [],
    ),
  );
}

test('every operation has a handler and every handler an operation', () => {
  assert.deepEqual(operationIds().sort(), Object.keys(handlers).sort());
});

test('the router refuses to start with an operation that has no handler', () => {
  const { getTrip: _dropped, ...rest } = handlers;
  assert.throws(() => createRouter(apiService, fakeContext, { document, handlers: rest }), /No handler in functions\/ for operation getTrip/);
});

test('the router refuses to start with a handler that has no operation', () => {
  const extra = { ...handlers, deleteEverything: handlers.getTrip! };
  assert.throws(() => createRouter(apiService, fakeContext, { document, handlers: extra }), /Handler deleteEverything has no operation/);
});

test('every operation documents its responses with schemas, and database operations their failures', () => {
  for (const [path, item] of Object.entries(document.paths ?? {}) as Array<[string, PathItemObject]>) {
    for (const method of ['get', 'post'] as const) {
      const op = item[method] as OperationObject | undefined;
      if (!op) continue;
      const responses = op.responses ?? {};
      assert.ok(responses['200'], `${method} ${path} has a 200`);
      if (path.startsWith('/trips')) {
        for (const status of ['400', '500', '503', '504']) assert.ok(responses[status], `${method} ${path} documents ${status}`);
      }
      if (path.includes('{trip_id}')) assert.ok(responses['404'], `${method} ${path} documents 404`);
    }
  }
});

test('every operation that uses the database documents 429 and 503 with their headers; the probes neither', () => {
  const components = document.components ?? {};
  const tooMany = components.responses?.TooManyRequests as { headers: Record<string, unknown> };
  assert.deepEqual(Object.keys(tooMany.headers).sort(), ['RateLimit', 'RateLimit-Policy', 'Retry-After']);
  const unavailable = components.responses?.Unavailable as { headers: Record<string, unknown> };
  assert.ok(unavailable.headers['Retry-After']);
  for (const [path, item] of Object.entries(document.paths ?? {}) as Array<[string, PathItemObject]>) {
    for (const method of ['get', 'post', 'patch', 'delete'] as const) {
      const op = item[method] as (OperationObject & { 'x-cache-ttl-seconds'?: number }) | undefined;
      if (!op) continue;
      const responses = op.responses ?? {};
      if (op.tags?.includes('service')) {
        assert.equal(responses['429'], undefined, `${method} ${path} is never limited`);
        continue;
      }
      assert.deepEqual(responses['429'], { $ref: '#/components/responses/TooManyRequests' }, `${method} ${path} documents 429`);
      assert.ok(responses['503'], `${method} ${path} documents 503`);
      if (op['x-cache-ttl-seconds']) {
        const headers = (responses['200'] as { headers: Record<string, unknown> }).headers;
        assert.ok(headers.Age && headers['Cache-Status'], `${method} ${path} documents Age and Cache-Status`);
      }
    }
  }
});

test('the licence the document declares is the one the repository carries', () => {
  const packageJson = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { license?: string };
  const licence = readFileSync(new URL('../../LICENSE', import.meta.url), 'utf8');
  assert.equal(document.info.license?.identifier, 'Apache-2.0');
  assert.equal(packageJson.license, document.info.license?.identifier);
  assert.match(licence, /Apache License\s+Version 2\.0, January 2004/);
});
