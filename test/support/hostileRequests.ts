import type { OpenAPIObject, OperationObject, ParameterObject, PathItemObject, SchemaObject } from 'openapi3-ts/oas31';
import { rawRequest } from './rawHttp.ts';

/** One malformed request, as bytes, with what it is and what it targets. */
export interface HostileRequest {
  category: string;
  description: string;
  method: string;
  /** The operation's path template, when the request aims at one. */
  template?: string;
  bytes: Buffer;
}

interface Operation {
  template: string;
  method: string;
  parameters: ParameterObject[];
  hasBody: boolean;
}

const SQL_FRAGMENTS = [
  "1'; DROP TABLE nyc_train_synced; --",
  '1 OR 1=1',
  "' OR '1'='1",
  '1; UPDATE nyc_train_synced SET vendor_id = 9',
  '1 UNION SELECT password FROM pg_shadow',
  '$$; SELECT pg_sleep(10); $$',
  '1)::text; --',
  '\\x27',
];
const UNICODE = ['١', '１', '𝟙', 'é', '😀', '\u202e1', '\u200b1', 'İ', '\ufeff1', 'Ω'];
const CONTROL = ['\u0000', '1\u0000', '\u0000\u0000', '\u0007', '\u001b[31m', '\r', '\n', '\t1'];

/** Values that are not what an integer parameter with these bounds accepts. */
function badIntegers(schema: SchemaObject): string[] {
  const min = schema.minimum ?? Number.MIN_SAFE_INTEGER;
  const max = schema.maximum ?? Number.MAX_SAFE_INTEGER;
  return [
    'abc',
    '1.5',
    '1e3',
    '0x10',
    '0b1',
    '0o7',
    ' 1',
    '1 ',
    '1,000',
    '1_000',
    '--1',
    '+-1',
    'NaN',
    'Infinity',
    '-Infinity',
    'null',
    'true',
    '[]',
    '{}',
    '[1]',
    '',
    ' ',
    String(min - 1),
    String(max + 1),
    '-1',
    '0',
    '-0'.repeat(2),
    '9007199254740993',
    '99999999999999999999999999',
    '9'.repeat(400),
    `-${'9'.repeat(400)}`,
    '1e309',
    '0.0000001',
    ...SQL_FRAGMENTS,
    ...UNICODE,
    ...CONTROL,
  ].filter((v) => !(/^[+-]?\d+$/.test(v) && Number(v) >= min && Number(v) <= max));
}

const BAD_BOOLEANS = ['yes', 'no', '1', '0', 'TRUE', 'False', 't', '', 'on', 'null', '[true]', "true'--", '\u0000'];

function badValuesFor(schema: SchemaObject | undefined): string[] {
  const type = Array.isArray(schema?.type) ? schema?.type[0] : schema?.type;
  if (type === 'integer') return badIntegers(schema!);
  if (type === 'boolean') return BAD_BOOLEANS;
  if (type === 'number') return ['abc', 'NaN', 'Infinity', '1e999', '', '0x1', ...SQL_FRAGMENTS];
  return [...SQL_FRAGMENTS, ...UNICODE, ...CONTROL];
}

/** Percent-encodes everything but unreserved characters, so any value travels in a URL. */
const encode = (value: string) => encodeURIComponent(value).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);

function operationsOf(document: OpenAPIObject): Operation[] {
  const operations: Operation[] = [];
  for (const [template, item] of Object.entries(document.paths ?? {}) as Array<[string, PathItemObject]>) {
    for (const method of ['get', 'post', 'put', 'patch', 'delete'] as const) {
      const operation = item[method] as OperationObject | undefined;
      if (!operation) continue;
      operations.push({
        template,
        method: method.toUpperCase(),
        parameters: (operation.parameters ?? []) as ParameterObject[],
        hasBody: operation.requestBody !== undefined,
      });
    }
  }
  return operations;
}

/** A valid value for a parameter: its example, its default, or its minimum. */
function validValue(parameter: ParameterObject): string {
  const schema = parameter.schema as SchemaObject | undefined;
  if (parameter.example !== undefined) return String(parameter.example);
  if (schema?.default !== undefined) return String(schema.default);
  if (schema?.minimum !== undefined) return String(Math.max(1, schema.minimum));
  return schema?.type === 'boolean' ? 'true' : '1';
}

function fillPath(template: string, parameters: ParameterObject[], override: Record<string, string> = {}): string {
  return template.replace(/\{([^}]+)\}/g, (_m, name: string) => override[name] ?? encode(validValue(parameters.find((p) => p.name === name)!)));
}

/** Bodies that must never be accepted as a vendor update (JSON that breaks the schema, or not JSON). */
export function badBodies(maxBodyBytes: number): Array<{ description: string; contentType?: string; body: Buffer | string }> {
  const json = 'application/json';
  const cases: Array<{ description: string; contentType?: string; body: Buffer | string }> = [
    { description: 'empty', contentType: json, body: '' },
    ...[
      '{',
      '{"vendor_id": "1"',
      '{"vendor_id": "1",}',
      "{'vendor_id': '1'}",
      '{vendor_id: "1"}',
      '{"vendor_id": "1"}}',
      'nul',
      '\ufeff{"vendor_id":"1"}',
      '{"vendor_id":"1"}\u0000',
    ].map((body) => ({ description: `malformed JSON ${JSON.stringify(body.slice(0, 30))}`, contentType: json, body })),
    ...['null', '[]', '"1"', '1', 'true', '{}', '[{"vendor_id":"1"}]'].map((body) => ({
      description: `not an object with vendor_id: ${body}`,
      contentType: json,
      body,
    })),
    ...[1, 1.5, -1, 0, 1e308, null, true, ['1'], { $ne: 1 }, {}, '', ' ', 'a'.repeat(33), '1\u0000', '1\n', ...SQL_FRAGMENTS, ...UNICODE, ...CONTROL].map(
      (value) => ({ description: `vendor_id ${JSON.stringify(value).slice(0, 40)}`, contentType: json, body: JSON.stringify({ vendor_id: value }) }),
    ),
    { description: 'extra member', contentType: json, body: '{"vendor_id":"1","extra":1}' },
    { description: '__proto__ member', contentType: json, body: '{"__proto__":{"vendor_id":"1"}}' },
    { description: '__proto__ beside vendor_id', contentType: json, body: '{"vendor_id":"1","__proto__":{"admin":true}}' },
    { description: 'constructor member', contentType: json, body: '{"vendor_id":"1","constructor":{"prototype":{"x":1}}}' },
    { description: 'duplicate key, the last one invalid', contentType: json, body: '{"vendor_id":"1","vendor_id":"DROP TABLE;"}' },
    { description: 'huge number', contentType: json, body: '{"vendor_id": 1e999}' },
    { description: 'deeply nested', contentType: json, body: '['.repeat(Math.floor(maxBodyBytes / 2) - 10) + ']'.repeat(Math.floor(maxBodyBytes / 2) - 10) },
    {
      description: 'deeply nested objects',
      contentType: json,
      body: `${'{"a":'.repeat(Math.floor(maxBodyBytes / 6))}1${'}'.repeat(Math.floor(maxBodyBytes / 6))}`,
    },
    { description: 'invalid UTF-8', contentType: json, body: Buffer.from([0x7b, 0x22, 0x76, 0x22, 0x3a, 0x22, 0xff, 0xfe, 0xc0, 0xaf, 0x22, 0x7d]) },
    { description: 'UTF-16 JSON', contentType: json, body: Buffer.from('{"vendor_id":"1"}', 'utf16le') },
    { description: 'oversized JSON', contentType: json, body: JSON.stringify({ vendor_id: '1', pad: 'x'.repeat(maxBodyBytes) }) },
    { description: 'oversized, far past the cap', contentType: json, body: 'x'.repeat(maxBodyBytes * 8) },
    { description: 'truncated oversized JSON', contentType: json, body: `{"vendor_id": "${'1'.repeat(maxBodyBytes)}` },
  ];
  for (const contentType of [
    undefined,
    'text/plain',
    'application/x-www-form-urlencoded',
    'multipart/form-data; boundary=x',
    'application/xml',
    'application/jsonx',
    'application/json-patch+json',
    'text/json',
    'json',
    '*/*',
    'application/javascript',
    'application/json\u0000',
  ]) {
    cases.push({ description: `valid JSON as ${JSON.stringify(contentType ?? 'no content type')}`, contentType, body: '{"vendor_id":"1"}' });
  }
  cases.push({ description: 'form body as form', contentType: 'application/x-www-form-urlencoded', body: 'vendor_id=1' });
  return cases;
}

/**
 * The deterministic part: for every operation in the document, every parameter gets every kind of
 * wrong value, every query gets duplicates, unknown and prototype-polluting names, over-long
 * strings; every body-taking operation every bad body and content type; every path every
 * unexpected method.
 */
export function hostileRequests(document: OpenAPIObject, limits: { maxBodyBytes: number; maxUrlLength: number }): HostileRequest[] {
  const requests: HostileRequest[] = [];
  const add = (
    category: string,
    description: string,
    method: string,
    target: string,
    template?: string,
    headers: Record<string, string> = {},
    body?: Buffer | string,
  ) => requests.push({ category, description, method, template, bytes: rawRequest(method, target, headers, body) });

  for (const op of operationsOf(document)) {
    const pathParams = op.parameters.filter((p) => p.in === 'path');
    const queryParams = op.parameters.filter((p) => p.in === 'query');
    const validQuery = queryParams.map((p) => `${p.name}=${encode(validValue(p))}`);
    const bodyHeaders: Record<string, string> = op.hasBody ? { 'content-type': 'application/json' } : {};
    const validBody = op.hasBody ? '{"vendor_id":"bad vendor!"}' : undefined; // a schema-breaking body: no write may happen

    for (const param of pathParams) {
      for (const bad of badValuesFor(param.schema as SchemaObject)) {
        add(
          'path parameter',
          `${param.name}=${JSON.stringify(bad).slice(0, 40)}`,
          op.method,
          fillPath(op.template, pathParams, { [param.name]: encode(bad) }),
          op.template,
          bodyHeaders,
          validBody,
        );
      }
      for (const raw of ['%', '%zz', '%E0%A4%A', '%C0%AF', '%2e%2e', '%2F', '..', '.', '%00', '1%2F2']) {
        add(
          'path parameter',
          `${param.name} raw ${raw}`,
          op.method,
          fillPath(op.template, pathParams, { [param.name]: raw }),
          op.template,
          bodyHeaders,
          validBody,
        );
      }
    }

    const path = fillPath(op.template, pathParams);
    for (const param of queryParams) {
      for (const bad of badValuesFor(param.schema as SchemaObject)) {
        add(
          'query parameter',
          `${param.name}=${JSON.stringify(bad).slice(0, 40)}`,
          op.method,
          `${path}?${[...validQuery.filter((q) => !q.startsWith(`${param.name}=`)), `${param.name}=${encode(bad)}`].join('&')}`,
          op.template,
        );
      }
      const v = encode(validValue(param));
      for (const [description, query] of [
        ['duplicate', `${param.name}=${v}&${param.name}=${v}`],
        ['duplicate, different values', `${param.name}=${v}&${param.name}=2`],
        ['no value', param.name],
        ['empty value', `${param.name}=`],
        ['array syntax', `${param.name}[]=${v}`],
        ['indexed syntax', `${param.name}[0]=${v}`],
        ['object syntax', `${param.name}[a]=${v}`],
        ['raw bad percent-encoding', `${param.name}=%zz`],
        ['encoded NUL', `${param.name}=${v}%00`],
        ['semicolon separator', `${param.name}=${v};${param.name}=2`],
        ['name case', `${param.name.toUpperCase()}=${v}`],
      ] as const) {
        add('query parameter', `${param.name} ${description}`, op.method, `${path}?${query}`, op.template);
      }
    }
    for (const [description, query] of [
      ['unknown parameter', 'foo=1'],
      ['__proto__', '__proto__=1'],
      ['__proto__ nested', '__proto__[admin]=1'],
      ['constructor', 'constructor=1'],
      ['constructor prototype', 'constructor[prototype][x]=1'],
      ['toString', 'toString=1'],
      ['hasOwnProperty', 'hasOwnProperty=1'],
      ['SQL in a name', `${encode("1' OR 1=1--")}=1`],
      ['NUL in a name', '%00=1'],
      ['500 parameters', Array.from({ length: 500 }, (_, i) => `p${i}=1`).join('&')],
      ['long string under the URL cap', `q=${'a'.repeat(limits.maxUrlLength - path.length - 10)}`],
      ['long string over the URL cap', `q=${'a'.repeat(limits.maxUrlLength)}`],
      ['long value of a real parameter', `${queryParams[0]?.name ?? 'x'}=${'9'.repeat(limits.maxUrlLength - path.length - 30)}`],
    ] as const) {
      add(
        'query string',
        description,
        op.method,
        `${path}?${validQuery.length ? `${validQuery.join('&')}&` : ''}${query}`,
        op.template,
        bodyHeaders,
        validBody,
      );
    }

    if (op.hasBody) {
      for (const bad of badBodies(limits.maxBodyBytes)) {
        add('body', bad.description, op.method, path, op.template, bad.contentType === undefined ? {} : { 'content-type': bad.contentType }, bad.body);
      }
      add('body', 'no body at all', op.method, path, op.template, { 'content-type': 'application/json' });
      add(
        'body',
        'chunked, far past the cap',
        op.method,
        path,
        op.template,
        { 'content-type': 'application/json', 'transfer-encoding': 'chunked' },
        `${(limits.maxBodyBytes * 4).toString(16)}\r\n${'x'.repeat(limits.maxBodyBytes * 4)}\r\n0\r\n\r\n`,
      );
      add(
        'body',
        'Content-Length larger than the cap, body short',
        op.method,
        path,
        op.template,
        { 'content-type': 'application/json', 'content-length': String(limits.maxBodyBytes * 100) },
        '{"vendor_id":"1"}',
      );
    }

    for (const method of ['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'TRACE', 'PROPFIND', 'LOCK', 'PURGE', 'SEARCH', 'QUERY', 'FOO', 'get', 'CONNECT']) {
      if (method === op.method || (method === 'GET' && op.method === 'GET')) continue;
      add(
        'method',
        `${method} ${op.template}`,
        method,
        method === 'CONNECT' ? 'api.test:443' : path,
        op.template,
        bodyHeaders,
        op.hasBody ? validBody : undefined,
      );
    }
  }
  return requests;
}

/** Malformed HTTP itself, and odd paths and headers: answered by node's parser or the router. */
export function malformedHttp(limits: { maxHeaderBytes: number }): HostileRequest[] {
  const raw = (description: string, bytes: string | Buffer, method = 'GET'): HostileRequest => ({
    category: 'raw HTTP',
    description,
    method,
    bytes: Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes, 'utf8'),
  });
  const close = 'Host: api.test\r\nConnection: close\r\n';
  const list: HostileRequest[] = [
    raw('garbage request line', 'HELLO\r\n\r\n'),
    raw('missing version', `GET /trips/1\r\n${close}\r\n`),
    raw('HTTP/2 preface', 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'),
    raw('HTTP/1.2', `GET /trips/1 HTTP/1.2\r\n${close}\r\n`),
    raw('HTTP/3.0', `GET /trips/1 HTTP/3.0\r\n${close}\r\n`),
    raw('bare LF line endings', 'GET /trips/1 HTTP/1.1\nHost: api.test\nConnection: close\n\n'),
    raw('no Host header', 'GET /trips/1 HTTP/1.1\r\nConnection: close\r\n\r\n'),
    raw('two Host headers', `GET /trips/1 HTTP/1.1\r\nHost: a\r\n${close}\r\n`),
    raw('space in the path', `GET /trips/1 2 HTTP/1.1\r\n${close}\r\n`),
    raw('raw non-ASCII in the path', Buffer.concat([Buffer.from('GET /trips/'), Buffer.from([0xc3, 0xa9, 0xff]), Buffer.from(` HTTP/1.1\r\n${close}\r\n`)])),
    raw('raw NUL in the path', `GET /trips/1\u0000 HTTP/1.1\r\n${close}\r\n`),
    raw('tab in the path', `GET /trips/\t1 HTTP/1.1\r\n${close}\r\n`),
    raw('NUL in a header value', `GET /trips/1 HTTP/1.1\r\n${close}X-Thing: a\u0000b\r\n\r\n`),
    raw('header without a colon', `GET /trips/1 HTTP/1.1\r\n${close}Broken header\r\n\r\n`),
    raw('space before the colon', `GET /trips/1 HTTP/1.1\r\n${close}X-Thing : 1\r\n\r\n`),
    raw('obsolete line folding', `GET /trips/1 HTTP/1.1\r\n${close}X-Thing: a\r\n  b\r\n\r\n`),
    raw('non-ASCII header name', `GET /trips/1 HTTP/1.1\r\n${close}X-Ünïcode: 1\r\n\r\n`),
    raw('headers past MAX_HEADER_BYTES', `GET /trips/1 HTTP/1.1\r\n${close}X-Big: ${'a'.repeat(limits.maxHeaderBytes)}\r\n\r\n`),
    raw('request line past MAX_HEADER_BYTES', `GET /trips/1?q=${'a'.repeat(limits.maxHeaderBytes)} HTTP/1.1\r\n${close}\r\n`),
    raw('3000 headers', `GET /trips/1 HTTP/1.1\r\n${close}${Array.from({ length: 3000 }, (_, i) => `X-H${i}: 1\r\n`).join('')}\r\n`),
    raw(
      'Content-Length twice, different',
      `POST /trips/1/vendor HTTP/1.1\r\n${close}Content-Type: application/json\r\nContent-Length: 17\r\nContent-Length: 3\r\n\r\n{"vendor_id":"1"}`,
      'POST',
    ),
    raw(
      'Content-Length and chunked (smuggling)',
      `POST /trips/1/vendor HTTP/1.1\r\n${close}Content-Type: application/json\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /trips/2 HTTP/1.1\r\n\r\n`,
      'POST',
    ),
    raw('negative Content-Length', `POST /trips/1/vendor HTTP/1.1\r\n${close}Content-Type: application/json\r\nContent-Length: -1\r\n\r\n{}`, 'POST'),
    raw('non-numeric Content-Length', `POST /trips/1/vendor HTTP/1.1\r\n${close}Content-Type: application/json\r\nContent-Length: abc\r\n\r\n{}`, 'POST'),
    raw(
      'huge Content-Length',
      `POST /trips/1/vendor HTTP/1.1\r\n${close}Content-Type: application/json\r\nContent-Length: 99999999999999999999\r\n\r\n{}`,
      'POST',
    ),
    raw(
      'invalid chunk size',
      `POST /trips/1/vendor HTTP/1.1\r\n${close}Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n`,
      'POST',
    ),
    raw('unknown transfer coding', `POST /trips/1/vendor HTTP/1.1\r\n${close}Content-Type: application/json\r\nTransfer-Encoding: gzip\r\n\r\n{}`, 'POST'),
    raw(
      'chunk extensions past the limit',
      `POST /trips/1/vendor HTTP/1.1\r\n${close}Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n2;${'e'.repeat(20_000)}\r\n{}\r\n0\r\n\r\n`,
      'POST',
    ),
    raw('absolute-form target', `GET http://evil.example/trips/1 HTTP/1.1\r\n${close}\r\n`),
    raw('asterisk-form target', `OPTIONS * HTTP/1.1\r\n${close}\r\n`, 'OPTIONS'),
    raw('authority-form target on GET', `GET api.test:443 HTTP/1.1\r\n${close}\r\n`),
    raw(
      'Expect: 100-continue, body never sent',
      `POST /trips/1/vendor HTTP/1.1\r\n${close}Content-Type: application/json\r\nContent-Length: 17\r\nExpect: 100-continue\r\n\r\n{"vendor_id":"1!"}`,
      'POST',
    ),
    raw('unknown Expect', `GET /trips/1 HTTP/1.1\r\n${close}Expect: the-unexpected\r\n\r\n`),
    raw('Upgrade: websocket', `GET /trips/1 HTTP/1.1\r\n${close}Upgrade: websocket\r\nConnection: Upgrade\r\n\r\n`),
  ];
  const paths = [
    '//trips/1',
    '/trips//1',
    '/trips/1/',
    '/trips/1/vendor/',
    '/TRIPS/1',
    '/trips/1;jsessionid=x',
    '/trips/1#frag',
    '/trips/%2e%2e/count',
    '/../../etc/passwd',
    '/%2e%2e/%2e%2e/etc/passwd',
    '/docs/../openapi.json',
    '/docs/%2e%2e/package.json',
    '/docs/..%2f..%2fpackage.json',
    '/docs/swagger-ui.css%00',
    '/docs/swagger-ui.css%00.html',
    '/docs/index.html/',
    '/docs//',
    '/openapi.json/x',
    '/openapi.json%00',
    '/health/',
    '/health/..',
    '/\\trips\\1',
    '/trips/1?',
    '/trips/1??',
    '/trips/1?&&&',
    '/trips/1?=',
    '/trips/1?=1',
    '/trips/pages?page=1&',
    '/trips/%31',
    '/trips/%u0031',
    '/trips/1%20',
    '/trips/%201',
    `/trips/${'1'.repeat(2000)}`,
    `/${'a/'.repeat(1000)}`,
  ];
  for (const path of paths) list.push(raw(`path ${path.slice(0, 50)}`, `GET ${path} HTTP/1.1\r\n${close}\r\n`));
  const headers: Array<[string, string]> = [
    ['X-Request-Id', 'x'.repeat(500)],
    ['X-Request-Id', '<script>alert(1)</script>'],
    ['X-Request-Id', "1'; DROP TABLE x;--"],
    ['If-None-Match', '*'],
    ['If-None-Match', 'W/"x", "y", garbage'],
    ['If-None-Match', '"'.repeat(2000)],
    ['Cache-Control', 'no-cache, no-cache, max-age=-1'],
    ['Cache-Control', 'x'.repeat(4000)],
    ['Accept', 'text/html'],
    ['Accept', 'application/xml;q=1, */*;q=0'],
    ['Accept-Encoding', 'gzip, br, zstd'],
    ['Accept-Charset', 'utf-16'],
    ['Origin', 'https://evil.example'],
    ['Origin', 'null'],
    ['Range', 'bytes=0-10'],
    ['Authorization', 'Basic Zm9vOmJhcg=='],
    ['Content-Type', 'application/json'],
    ['Cookie', 'a=1; '.repeat(500)],
    ['X-Forwarded-For', '1.1.1.1, '.repeat(200)],
    ['X-HTTP-Method-Override', 'DELETE'],
    ['X-Forwarded-Host', 'evil.example'],
    ['Transfer-Encoding', 'identity'],
  ];
  for (const [name, value] of headers) list.push(raw(`header ${name}: ${value.slice(0, 40)}`, `GET /trips/1 HTTP/1.1\r\n${close}${name}: ${value}\r\n\r\n`));
  return list;
}

/** A small deterministic PRNG (mulberry32): the same requests on every run. */
export function prng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Random combinations: an operation, then one to three mutations drawn from the pools above
 * (a bad path value, a bad query value, a duplicate, a bad body, an odd content type, an unexpected
 * method), so bad inputs also arrive together and in every order.
 */
export function randomHostileRequests(
  document: OpenAPIObject,
  limits: { maxBodyBytes: number; maxUrlLength: number },
  count: number,
  seed = 1,
): HostileRequest[] {
  const random = prng(seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
  const operations = operationsOf(document);
  const bodies = badBodies(limits.maxBodyBytes).filter((b) => Buffer.byteLength(b.body) <= limits.maxBodyBytes * 2);
  const requests: HostileRequest[] = [];
  for (let i = 0; i < count; i++) {
    const op = pick(operations);
    const pathParams = op.parameters.filter((p) => p.in === 'path');
    const queryParams = op.parameters.filter((p) => p.in === 'query');
    let method = op.method;
    const override: Record<string, string> = {};
    const query: string[] = [];
    let body: { contentType?: string; body: Buffer | string } | undefined = op.hasBody
      ? { contentType: 'application/json', body: '{"vendor_id":"no spaces allowed"}' }
      : undefined;
    const mutations: string[] = [];
    // Mutations that apply to this operation; an unexpected method only now and then, as it
    // stops the request before validation and would hide the rest.
    const kinds: string[] = ['unknown'];
    if (pathParams.length) kinds.push('path', 'path');
    if (queryParams.length) kinds.push('query', 'query', 'duplicate');
    if (op.hasBody) kinds.push('body', 'body');
    const rounds = 1 + Math.floor(random() * 3);
    for (let r = 0; r < rounds; r++) {
      const kind = random() < 0.08 ? 'method' : pick(kinds);
      if (kind === 'path') {
        const p = pick(pathParams);
        override[p.name] = encode(pick(badValuesFor(p.schema as SchemaObject)));
        mutations.push(`bad ${p.name}`);
      } else if (kind === 'query') {
        const p = pick(queryParams);
        query.push(`${p.name}=${encode(pick(badValuesFor(p.schema as SchemaObject)))}`);
        mutations.push(`bad ${p.name}`);
      } else if (kind === 'duplicate') {
        const p = pick(queryParams);
        query.push(`${p.name}=${encode(validValue(p))}`, `${p.name}=${encode(validValue(p))}`);
        mutations.push(`duplicate ${p.name}`);
      } else if (kind === 'unknown') {
        query.push(
          `${pick(['x', 'id', 'limit', 'offset', 'where', 'select', 'order', '__proto__', 'sort'])}=${encode(pick([...SQL_FRAGMENTS, ...UNICODE, '1']))}`,
        );
        mutations.push('unknown parameter');
      } else if (kind === 'body') {
        body = pick(bodies);
        mutations.push('bad body');
      } else {
        method = pick(['PUT', 'DELETE', 'PATCH', 'TRACE', op.method === 'GET' ? 'POST' : 'GET']);
        mutations.push(`method ${method}`);
      }
    }
    // A write must have something wrong with it: never send a well-formed update.
    if (method === 'POST' && op.hasBody && !mutations.some((m) => m !== `method ${method}`))
      body = { contentType: 'application/json', body: '{"vendor_id":""}' };
    const target = `${fillPath(op.template, pathParams, override)}${query.length ? `?${query.join('&')}` : ''}`;
    const headers: Record<string, string> = body?.contentType ? { 'content-type': body.contentType } : {};
    requests.push({
      category: 'random combination',
      description: `${op.method} ${op.template}: ${mutations.join(', ')}`,
      method,
      template: op.template,
      bytes: rawRequest(method, target, headers, body?.body),
    });
  }
  return requests;
}
