import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ContractChecker } from '../support/contract.ts';
import { pollUntil } from '../support/pollUntil.ts';
import { startTestDatabase, startTestService, type TestDatabase, type TestService } from '../support/testService.ts';
import { startTestIssuer, TEST_AUDIENCE, type TestIssuer } from '../support/testIssuer.ts';
import {
  expressTransport,
  fetchTransport,
  h2cTransport,
  lambdaV1Transport,
  lambdaV2Transport,
  type Exchange,
  type SendOptions,
  type Transport,
} from '../support/transports.ts';
import { linesLeakingSecrets } from '../support/workspaceEmulator.ts';

/**
 * AUTH_MODE=jwt against a test issuer (keys generated here, discovery and JWKS on loopback), through
 * every runtime: Express, h2c, a fetch host and both Lambda payload versions must give the same
 * status and challenge for every token.
 */
const WRITER = 'writer@example.com';
const EDITOR = 'editor@example.com';
const READER = 'reader@example.com';
const EDITORS_GROUP = 'trip-editors';

let database: TestDatabase;
let issuer: TestIssuer;
let service: TestService;
let transports: Transport[];
let h2c: Awaited<ReturnType<typeof h2cTransport>>;
let contract: ContractChecker;
/** Every token a test made: none may appear in a log line or a response. */
const issued: string[] = [];

before(async () => {
  database = await startTestDatabase(300);
  issuer = await startTestIssuer();
  service = await startTestService({
    database,
    env: { AUTH_MODE: 'jwt', AUTH_JWT_ISSUER: issuer.issuer, AUTH_JWT_AUDIENCE: TEST_AUDIENCE, AUTH_WRITERS: `${WRITER}, ${EDITORS_GROUP}` },
  });
  h2c = await h2cTransport(service.ctx);
  transports = [expressTransport(service.ctx), h2c, fetchTransport(service.ctx), lambdaV2Transport(service.ctx), lambdaV1Transport(service.ctx)];
  contract = new ContractChecker(service.router.document);
});
after(async () => {
  await h2c?.close();
  await service?.close();
  await issuer?.close();
  await database?.stop();
});

const bearer = (token: string): SendOptions => ({ headers: { authorization: `Bearer ${token}` } });
const json = (token: string, body: unknown): SendOptions => ({
  headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
  body: JSON.stringify(body),
});
const problem = (exchange: Exchange) => JSON.parse(exchange.text) as { status: number; field?: string; detail: string; operation?: string };

/** The same request through every runtime: same status, same challenge, answers within the contract. */
async function everywhere(method: string, url: string, options: SendOptions = {}): Promise<Exchange> {
  const results: Exchange[] = [];
  for (const transport of transports) {
    const exchange = await transport.send(method, url, options);
    if (!url.startsWith('/docs') && url !== '/metrics') contract.check(method, url, exchange); // not in the document
    results.push(exchange);
  }
  for (const [i, exchange] of results.entries()) {
    assert.equal(exchange.status, results[0]!.status, `${transports[i]!.name} status for ${method} ${url}`);
    assert.equal(exchange.headers['www-authenticate'], results[0]!.headers['www-authenticate'], `${transports[i]!.name} challenge`);
  }
  return results[0]!;
}

async function token(claims: Record<string, unknown>, options?: Parameters<TestIssuer['sign']>[1]): Promise<string> {
  const signed = await issuer.sign(claims, options);
  issued.push(signed);
  return signed;
}

/** 401, RFC 6750 `invalid_token`, a description that says why, the problem naming the header. */
async function refused(options: SendOptions, why: RegExp): Promise<void> {
  const answer = await everywhere('GET', '/trips/42', options);
  assert.equal(answer.status, 401, answer.text);
  assert.match(answer.headers['www-authenticate'] ?? '', /^Bearer realm="lakebase-api", error="invalid_token", error_description="[^"\\]*"$/);
  assert.match(answer.headers['www-authenticate']!, why);
  assert.equal(answer.headers['content-type'], 'application/problem+json; charset=utf-8');
  assert.equal(problem(answer).field, 'authorization');
  assert.match(problem(answer).detail, why);
}

describe('AUTH_MODE=jwt, the same in every runtime', () => {
  test('a valid token (RS256 or ES256) reads; no token is a 401 with a bare challenge', async () => {
    for (const kid of ['rsa-1', 'ec-1']) {
      const ok = await everywhere('GET', '/trips/42', bearer(await token({ email: READER }, { kid })));
      assert.equal(ok.status, 200, ok.text);
      assert.equal(JSON.parse(ok.text).id, 42);
    }
    const none = await everywhere('GET', '/trips/42');
    assert.equal(none.status, 401);
    assert.equal(none.headers['www-authenticate'], 'Bearer realm="lakebase-api"', 'RFC 6750 §3.1: no error code when no credential was sent');
    assert.equal(problem(none).field, 'authorization');
    const basic = await everywhere('GET', '/trips/42', { headers: { authorization: 'Basic dXNlcjpwYXNz' } });
    assert.equal(basic.status, 401);
    assert.match(basic.headers['www-authenticate']!, /error="invalid_request"/);
  });

  test('expired, not yet valid, wrong issuer, wrong audience, no identity claim: 401 invalid_token saying why', async () => {
    const now = Math.floor(Date.now() / 1000);
    await refused(bearer(await token({ email: READER }, { expiresAt: now - 120 })), /expired/);
    await refused(bearer(await token({ email: READER }, { notBefore: now + 600 })), /not valid yet/);
    await refused(bearer(await token({ email: READER, iss: 'https://login.example.com' })), /another issuer/);
    await refused(bearer(await token({ email: READER, aud: 'some-other-api' })), /another audience/);
    await refused(bearer(await token({ sub: 'no-email' })), /no email claim/);
  });

  test('within the clock skew, a token just past exp or just before nbf is accepted', async () => {
    const now = Math.floor(Date.now() / 1000);
    assert.equal((await everywhere('GET', '/trips/43', bearer(await token({ email: READER }, { expiresAt: now - 5 })))).status, 200);
    assert.equal((await everywhere('GET', '/trips/43', bearer(await token({ email: READER }, { notBefore: now + 5 })))).status, 200);
  });

  test('forgeries: a tampered payload, alg none, HS256 keyed with the public key: 401', async () => {
    const genuine = await token({ email: READER });
    const [header, , signature] = genuine.split('.');
    const forgedPayload = Buffer.from(
      JSON.stringify({ iss: issuer.issuer, aud: TEST_AUDIENCE, email: WRITER, exp: Math.floor(Date.now() / 1000) + 3600 }),
    ).toString('base64url');
    await refused(bearer(`${header}.${forgedPayload}.${signature}`), /signature is invalid/);

    const unsecured = `${Buffer.from(JSON.stringify({ alg: 'none', typ: 'JWT' })).toString('base64url')}.${forgedPayload}.`;
    await refused(bearer(unsecured), /accepted \(asymmetric\) algorithm/);

    const { SignJWT } = await import('jose');
    const hmac = await new SignJWT({ iss: issuer.issuer, aud: TEST_AUDIENCE, email: WRITER, exp: Math.floor(Date.now() / 1000) + 3600 })
      .setProtectedHeader({ alg: 'HS256', kid: 'rsa-1' })
      .sign(new TextEncoder().encode(await issuer.publicKeyPem('rsa-1')));
    issued.push(hmac);
    await refused(bearer(hmac), /accepted \(asymmetric\) algorithm/);
  });

  test('an unknown kid is a 401 without hammering the issuer: no refetch within the cooldown of the last fetch', async () => {
    const before = issuer.jwksFetches();
    for (const claims of [{ email: READER }, { email: WRITER }]) {
      const stranger = await issuer.signWithUnpublishedKey(claims);
      issued.push(stranger);
      await refused(bearer(stranger), /key id/);
    }
    assert.equal(issuer.jwksFetches(), before, 'the key set was fetched moments ago (AUTH_JWT_JWKS_COOLDOWN_SECONDS, default 30)');
    assert.equal((await everywhere('GET', '/trips/44', bearer(await token({ email: READER })))).status, 200, 'known keys still verify');
  });

  test('AUTH_WRITERS: a listed e-mail and a listed group write; anyone else reads but gets 403 naming the operation', async () => {
    const writer = await token({ email: WRITER });
    const editor = await token({ email: EDITOR, groups: [EDITORS_GROUP, 'everyone'] });
    const reader = await token({ email: READER, groups: ['everyone'] });
    for (const [who, vendor] of [
      [writer, '1'],
      [editor, '2'],
    ] as const) {
      const written = await everywhere('POST', '/trips/30/vendor', json(who, { vendor_id: vendor }));
      assert.equal(written.status, 200, written.text);
      assert.equal(JSON.parse(written.text).vendor_id, vendor);
    }
    const refusedWrite = await everywhere('POST', '/trips/30/vendor', json(reader, { vendor_id: '1' }));
    assert.equal(refusedWrite.status, 403);
    assert.equal(problem(refusedWrite).operation, 'updateTripVendor');
    assert.match(problem(refusedWrite).detail, /reader@example\.com may not run updateTripVendor/);
    const { rows } = await database.admin.query<{ vendor_id: string }>('SELECT vendor_id FROM public.nyc_train_synced WHERE id = 30');
    assert.equal(rows[0]!.vendor_id, '2', 'the refused write changed nothing');
    assert.equal((await everywhere('GET', '/trips/30', bearer(reader))).status, 200);
    // 403 before the input is looked at: a non-writer learns nothing about what a valid write is.
    assert.equal((await everywhere('POST', '/trips/30/vendor', json(reader, { vendor_id: 'x'.repeat(500) }))).status, 403);
  });

  test('hostile tokens (huge, binary, many dots, garbage segments) are 401, never 5xx', async () => {
    const hostile = [
      'a'.repeat(9000),
      `${'eyJhbGciOiJSUzI1NiJ9.'.repeat(300)}x`,
      '.'.repeat(2000),
      'a.b.c.d.e.f.g',
      'e30.e30.e30',
      'eyJhbGciOiJSUzI1NiIsImtpZCI6InJzYS0xIn0.bm90IGpzb24.c2ln',
      `${Buffer.from(`{"alg":"RS256","kid":"${'k'.repeat(3000)}"}`).toString('base64url')}.e30.AAAA`,
      '\u00ff\u00fe\u0080binary\u00e9',
      'Bearer',
      '=abc',
    ];
    for (const value of hostile) {
      const answer = await everywhere('GET', '/trips/42', bearer(value));
      assert.equal(answer.status, 401, `${value.slice(0, 40)}: ${answer.text}`);
    }
    assert.equal((await everywhere('GET', '/trips/42', { headers: { authorization: 'Bearer a b c' } })).status, 401);
  });

  test('the probes, the document and the docs stay open; the document declares bearer JWT on every other operation', async () => {
    for (const url of ['/health', '/health/ready', '/metrics', '/openapi.json', '/docs/']) {
      assert.equal((await everywhere('GET', url)).status, 200, url);
    }
    const document = service.router.document;
    assert.deepEqual(document.components?.securitySchemes, {
      bearerJwt: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT', description: document.components!.securitySchemes!.bearerJwt!.description },
    });
    for (const [path, item] of Object.entries(document.paths!)) {
      for (const operation of [item.get, item.post].filter((op) => op !== undefined)) {
        assert.ok(Array.isArray(operation.security), `${path}: security is defined`);
        const probe = operation.tags?.includes('service') === true;
        assert.deepEqual(operation.security, probe ? [] : [{ bearerJwt: [] }], path);
        if (!probe) assert.ok(operation.responses!['401'], `${path} documents 401`);
        if (operation === item.post) assert.ok(operation.responses!['403'], `${path} documents 403`);
      }
    }
  });

  test("every request's log line names the caller; no token in any log line or response", async () => {
    const lines = service.logs.records().filter((r) => r.route === '/trips/{trip_id}/vendor' && (r.status === 200 || r.status === 403));
    assert.ok(lines.length > 0);
    assert.ok(
      lines.every((r) => typeof r.user === 'string'),
      'authenticated requests carry the caller',
    );
    assert.ok(
      lines.some((r) => r.user === READER && r.status === 403),
      'a refused write names who was refused',
    );
    assert.deepEqual(linesLeakingSecrets(service.logs.lines, issued), []);
    const answer = await everywhere('GET', '/trips/42', bearer(issued[0]!));
    assert.ok(!issued.some((t) => answer.text.includes(t) || Object.values(answer.headers).some((h) => h.includes(t))));
    const metrics = await everywhere('GET', '/metrics');
    assert.ok(!issued.some((t) => metrics.text.includes(t)), 'no token in any metric');
    assert.match(metrics.text, /route="\/trips\/\{trip_id\}",status="401"/, '401s are counted per route, like other failures');
  });
});

describe('key rotation', () => {
  test('after the cooldown an unknown kid refetches the key set exactly once, then 401; the next unknown kid fetches nothing', async () => {
    const rotating = await startTestService({
      database,
      env: { AUTH_MODE: 'jwt', AUTH_JWT_ISSUER: issuer.issuer, AUTH_JWT_AUDIENCE: TEST_AUDIENCE, AUTH_JWT_JWKS_COOLDOWN_SECONDS: '2' },
    });
    try {
      const ask = async (signed: string) => (await rotating.api.get('/trips/42', { headers: { authorization: `Bearer ${signed}` } })).status;
      assert.equal(await ask(await issuer.sign({ email: READER })), 200);
      const loaded = issuer.jwksFetches();
      const stranger = await issuer.signWithUnpublishedKey({ email: READER });
      // Polled, not slept: each unknown kid is refused; once the cooldown has passed, one of them refetches.
      await pollUntil('an unknown kid to refetch the key set', 10_000, async () => {
        assert.equal(await ask(stranger), 401);
        return issuer.jwksFetches() > loaded ? true : undefined;
      });
      assert.equal(issuer.jwksFetches(), loaded + 1);
      for (let i = 0; i < 5; i++) assert.equal(await ask(await issuer.signWithUnpublishedKey({ email: `u${i}@example.com` })), 401);
      assert.equal(issuer.jwksFetches(), loaded + 1, 'at most one refresh per cooldown');
    } finally {
      await rotating.close();
    }
  });
});

describe('an unreachable issuer', () => {
  test("is a 503 with Retry-After (an outage, not the caller's fault); the next request tries again", async () => {
    const unreachable = await startTestService({
      database,
      env: { AUTH_MODE: 'jwt', AUTH_JWT_ISSUER: 'http://127.0.0.1:1', AUTH_JWT_AUDIENCE: TEST_AUDIENCE },
    });
    try {
      const signed = await issuer.sign({ email: READER, iss: 'http://127.0.0.1:1' });
      for (let attempt = 0; attempt < 2; attempt++) {
        const answer = await unreachable.api.get('/trips/42', { headers: { authorization: `Bearer ${signed}` } });
        assert.equal(answer.status, 503, answer.text);
        assert.equal(answer.headers['retry-after'], '5');
      }
    } finally {
      await unreachable.close();
    }
  });
});
