import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import request from 'supertest';
import { createFetchHandler } from '../../lib/http/adapters/fetch.ts';
import { createLambdaHandler } from '../../lib/http/adapters/lambda.ts';
import { buildOpenApiDocument } from '../../openapi/document.ts';
import { asUser, createUserRoles, startUserModeService, TRIPS, type UserModeService } from '../support/lakebaseService.ts';
import { linesLeakingSecrets, startEmulatedLakebase, TEST_SERVICE_PRINCIPAL, waitFor, type EmulatedLakebase } from '../support/workspaceEmulator.ts';
import { apiService } from '../../functions/index.ts';

/**
 * LAKEBASE_ACCESS=user: every trips request logs in to Postgres as the signed-in user (their
 * credential minted by the emulated workspace with their own token), so Postgres grants and
 * row-level security decide what they see and change.
 */
const ROWS = 600;
const WRITER = 'writer@example.com';
const READER = 'reader@example.com';
const NOBODY = 'nobody@example.com';
const VENDOR1 = 'vendor-one@example.com';
const VENDOR2 = 'vendor-two@example.com';

let lb: EmulatedLakebase;
let service: UserModeService;
const tokens: Record<string, string> = {};
const as = (email: string) => ({ headers: asUser(email, tokens[email]!) });

before(async () => {
  // No blanket grants: each role gets exactly what a test gives it.
  lb = await startEmulatedLakebase({ rows: ROWS, emulator: { grantRoles: [] } });
  await createUserRoles(lb.admin, {
    [WRITER]: ['SELECT', 'UPDATE'],
    [READER]: ['SELECT'],
    [NOBODY]: [],
    [VENDOR1]: ['SELECT', 'UPDATE'],
    [VENDOR2]: ['SELECT', 'UPDATE'],
  });
  for (const email of [WRITER, READER, NOBODY, VENDOR1, VENDOR2]) tokens[email] = lb.emulator.createUserToken(email);
  service = await startUserModeService(lb);
});

after(async () => {
  await service?.close();
  await lb?.stop();
});

async function vendorOf(id: number): Promise<string> {
  const { rows } = await lb.admin.query<{ vendor_id: string }>(`SELECT vendor_id FROM ${TRIPS} WHERE id = $1`, [id]);
  return rows[0]!.vendor_id;
}

describe('Postgres grants decide, per user', () => {
  test('read / update: writer 200/200, reader 200/403, no access 403/403, each 403 naming the operation and the user', async () => {
    const expected: Record<string, [number, number]> = { [WRITER]: [200, 200], [READER]: [200, 403], [NOBODY]: [403, 403] };
    for (const [email, [readStatus, updateStatus]] of Object.entries(expected)) {
      const read = await service.api.get('/trips/7', as(email));
      assert.equal(read.status, readStatus, `${email} read: ${read.text}`);
      const before = await vendorOf(7);
      const target = before === '1' ? '2' : '1';
      const update = await service.api.post('/trips/7/vendor', { vendor_id: target }, as(email));
      assert.equal(update.status, updateStatus, `${email} update: ${update.text}`);
      assert.equal(await vendorOf(7), updateStatus === 200 ? target : before, 'a refused update changes nothing');
      for (const [response, operation] of [
        [read, 'getTrip'],
        [update, 'updateTripVendor'],
      ] as const) {
        if (response.status !== 403) continue;
        assert.match(response.headers['content-type']!, /application\/problem\+json/);
        assert.equal(response.body.operation, operation);
        assert.match(response.body.detail, new RegExp(`${email.replace('.', '\\.')} may not run ${operation}: permission denied for table nyc_train_synced`));
      }
    }
  });

  test('a refused read is not cached: once granted, the same user reads at once', async () => {
    assert.equal((await service.api.get('/trips/count', as(NOBODY))).status, 403);
    await lb.admin.query(`GRANT SELECT ON ${TRIPS} TO ${pg.escapeIdentifier(NOBODY)}`);
    try {
      const count = await service.api.get('/trips/count', as(NOBODY));
      assert.equal(count.status, 200);
      assert.equal(count.body.total_trips, ROWS);
    } finally {
      await lb.admin.query(`REVOKE ALL ON ${TRIPS} FROM ${pg.escapeIdentifier(NOBODY)}`);
    }
  });

  test('the log line of every request names the verified user; no user token or minted password in any line', async () => {
    const lines = service.logs.records().filter((r) => r.route === '/trips/{trip_id}/vendor');
    assert.ok(lines.length >= 3);
    for (const email of [WRITER, READER, NOBODY])
      assert.ok(
        lines.some((r) => r.user === email && (r.caller as { email?: string }).email === email),
        email,
      );
    const secrets = [...lb.emulator.secrets(), ...Object.values(tokens), TEST_SERVICE_PRINCIPAL.clientSecret];
    assert.deepEqual(linesLeakingSecrets(service.logs.lines, secrets), []);
  });
});

describe('row-level security: each vendor user sees only their vendor', () => {
  const expected: Record<string, { count: number; own: number; other: number }> = {};

  before(async () => {
    await lb.admin.query(`ALTER TABLE ${TRIPS} ENABLE ROW LEVEL SECURITY`);
    await lb.admin.query(`CREATE POLICY vendor_one ON ${TRIPS} TO ${pg.escapeIdentifier(VENDOR1)} USING (vendor_id = '1')`);
    await lb.admin.query(`CREATE POLICY vendor_two ON ${TRIPS} TO ${pg.escapeIdentifier(VENDOR2)} USING (vendor_id = '2')`);
    for (const [email, vendor] of [
      [VENDOR1, '1'],
      [VENDOR2, '2'],
    ] as const) {
      const { rows } = await lb.admin.query<{ count: string; own: number; other: number }>(
        `SELECT count(*) FILTER (WHERE vendor_id = $1) AS count, min(id) FILTER (WHERE vendor_id = $1) AS own, min(id) FILTER (WHERE vendor_id <> $1) AS other FROM ${TRIPS}`,
        [vendor],
      );
      expected[email] = { count: Number(rows[0]!.count), own: rows[0]!.own, other: rows[0]!.other };
    }
    assert.notEqual(expected[VENDOR1]!.count, expected[VENDOR2]!.count, 'the two vendors must differ in size for the test to mean anything');
  });
  after(async () => {
    await lb.admin.query(`DROP POLICY IF EXISTS vendor_one ON ${TRIPS}`);
    await lb.admin.query(`DROP POLICY IF EXISTS vendor_two ON ${TRIPS}`);
    await lb.admin.query(`ALTER TABLE ${TRIPS} DISABLE ROW LEVEL SECURITY`);
  });

  test('/trips/count, /trips/pages and /trips/{id} differ per user; a trip outside their rows is a 404', async () => {
    for (const email of [VENDOR1, VENDOR2]) {
      const { count, own, other } = expected[email]!;
      assert.equal((await service.api.get('/trips/count', as(email))).body.total_trips, count, email);
      const page = await service.api.get('/trips/pages?page_size=1000&include_count=true', as(email));
      assert.equal(page.status, 200, page.text);
      assert.equal(page.body.trips.length, count, email);
      assert.ok(page.body.trips.every((trip: { vendor_id: string }) => trip.vendor_id === (email === VENDOR1 ? '1' : '2')));
      assert.equal((await service.api.get(`/trips/${own}`, as(email))).status, 200);
      const hidden = await service.api.get(`/trips/${other}`, as(email));
      assert.equal(hidden.status, 404, `${email} must not see trip ${other}`);
      // A write to a row the policy hides finds nothing, and changes nothing.
      const before = await vendorOf(other);
      assert.equal((await service.api.post(`/trips/${other}/vendor`, { vendor_id: before }, as(email))).status, 404);
    }
  });

  test('concurrent lookups of both users, interleaved: batches never mix users, each sees only their rows', async () => {
    // Lookups gathered into one statement run on one user's connection: a batch mixing users would
    // answer one user's trip to the other, or a 404 for their own.
    const { rows } = await lb.admin.query<{ id: number; vendor_id: string }>(`SELECT id, vendor_id FROM ${TRIPS} WHERE id <= 120 ORDER BY id`);
    const calls = rows.flatMap(({ id, vendor_id: vendor }) =>
      [VENDOR1, VENDOR2].map((email) => ({ id: Number(id), email, visible: vendor === (email === VENDOR1 ? '1' : '2') })),
    );
    const answers = await Promise.all(
      calls.map(({ id, email }) => service.api.get(`/trips/${id}`, { headers: { ...as(email).headers, 'cache-control': 'no-cache' } })),
    );
    calls.forEach(({ id, email, visible }, i) => {
      const answer = answers[i]!;
      assert.equal(answer.status, visible ? 200 : 404, `${email} trip ${id}: ${answer.text}`);
      if (visible) assert.equal(answer.body.id, id);
    });
  });

  test("moving a trip out of the user's rows is refused by the policy: 403, the row unchanged", async () => {
    const { own } = expected[VENDOR1]!;
    const refused = await service.api.post(`/trips/${own}/vendor`, { vendor_id: '2' }, as(VENDOR1));
    assert.equal(refused.status, 403, refused.text);
    assert.equal(refused.body.operation, 'updateTripVendor');
    assert.match(refused.body.detail, /row-level security/);
    assert.equal(await vendorOf(own), '1');
  });

  test('no cross-user cache leak: same URL, per-user answers and ETags; the control with an unscoped key leaks', async () => {
    const ask = async (api: UserModeService['api'], email: string, headers: Record<string, string> = {}) =>
      api.get('/trips/count', { headers: { ...as(email).headers, ...headers } });
    const first = await ask(service.api, VENDOR1);
    const second = await ask(service.api, VENDOR2);
    assert.equal(first.body.total_trips, expected[VENDOR1]!.count);
    assert.equal(second.body.total_trips, expected[VENDOR2]!.count);
    assert.equal((await ask(service.api, VENDOR1)).headers['x-cache'], 'HIT', 'each user still gets their own cached answer');
    // User 2 presenting user 1's ETag gets their own body, not a 304.
    const revalidated = await ask(service.api, VENDOR2, { 'if-none-match': first.headers.etag! });
    assert.equal(revalidated.status, 200);
    assert.equal(revalidated.body.total_trips, expected[VENDOR2]!.count);
    assert.match(String(first.headers.vary), /X-Forwarded-Email/i);

    // Control: the same service with the user left out of the cache key serves user 1's count to user 2.
    const unscoped = await startUserModeService(lb, { router: { cacheScope: () => '' } });
    try {
      const a = await ask(unscoped.api, VENDOR1);
      const b = await ask(unscoped.api, VENDOR2);
      assert.equal(a.body.total_trips, expected[VENDOR1]!.count);
      assert.equal(b.headers['x-cache'], 'HIT');
      assert.equal(b.body.total_trips, expected[VENDOR1]!.count, "without the user in the key, user 2 receives user 1's answer");
    } finally {
      await unscoped.close();
    }
  });
});

describe('who is calling', () => {
  test('missing, malformed, duplicated or mismatched identity headers: 401 naming the header', async () => {
    const cases: Array<[string, Record<string, string | string[]>, string]> = [
      ['no headers', {}, 'x-forwarded-access-token'],
      ['token only', { 'x-forwarded-access-token': tokens[WRITER]! }, 'x-forwarded-email'],
      ['email only', { 'x-forwarded-email': WRITER }, 'x-forwarded-access-token'],
      ['malformed token', { 'x-forwarded-access-token': 'not a token', 'x-forwarded-email': WRITER }, 'x-forwarded-access-token'],
      ['malformed email', { 'x-forwarded-access-token': tokens[WRITER]!, 'x-forwarded-email': 'writer' }, 'x-forwarded-email'],
      ['unknown token', asUser(WRITER, 'emu-user-forged0123456789'), 'x-forwarded-access-token'],
      ["someone else's e-mail", asUser(READER, tokens[WRITER]!), 'x-forwarded-email'],
    ];
    for (const [name, headers, field] of cases) {
      for (const [method, url] of [
        ['GET', '/trips/count'],
        ['GET', '/trips/1'],
        ['POST', '/trips/1/vendor'],
      ] as const) {
        const response = await service.api.send(method, url, {
          headers: headers as Record<string, string>,
          ...(method === 'POST' ? { body: { vendor_id: '1' } } : {}),
        });
        assert.equal(response.status, 401, `${name}: ${method} ${url} → ${response.status} ${response.text}`);
        assert.equal(response.body.field, field, name);
        assert.match(response.headers['www-authenticate']!, /^Bearer/);
      }
    }
  });

  test('the same in the fetch and Lambda adapters', async () => {
    const fetchHandler = createFetchHandler(apiService, service.ctx);
    assert.equal((await fetchHandler(new Request('http://api.test/trips/1'))).status, 401);
    const viaFetch = await fetchHandler(new Request('http://api.test/trips/1', { headers: asUser(READER, tokens[READER]!) }));
    assert.equal(viaFetch.status, 200);
    assert.equal(((await viaFetch.json()) as { id: number }).id, 1);
    const lambda = createLambdaHandler(apiService, async () => service.ctx);
    const event = (headers: Record<string, string>) => ({
      version: '2.0',
      routeKey: '$default',
      rawPath: '/trips/1',
      rawQueryString: '',
      headers,
      requestContext: { http: { method: 'GET', path: '/trips/1', protocol: 'HTTP/1.1', sourceIp: '127.0.0.1', userAgent: 'test' }, stage: '$default' },
      isBase64Encoded: false,
    });
    assert.equal((await lambda(event({}) as never)).statusCode, 401);
    assert.equal((await lambda(event(asUser(WRITER, tokens[WRITER]!)) as never)).statusCode, 200);
  });

  test('/, /health, /health/ready, /metrics, /openapi.json and /docs need no user', async () => {
    for (const url of ['/', '/health', '/health/ready', '/openapi.json', '/docs/']) {
      const response = await service.api.get(url);
      assert.equal(response.status, 200, `${url}: ${response.text}`);
    }
    // Operational, outside the OpenAPI document (so outside the contract checker).
    const metrics = await request(service.app).get('/metrics');
    assert.equal(metrics.status, 200);
  });

  test('the document declares the user headers on the trips operations only in user mode', () => {
    const userDoc = service.router.document;
    assert.deepEqual(Object.keys(userDoc.components?.securitySchemes ?? {}).sort(), ['forwardedAccessToken', 'forwardedEmail']);
    assert.ok(userDoc.paths!['/trips/count']!.get!.security);
    assert.ok(userDoc.paths!['/trips/count']!.get!.responses!['401']);
    assert.deepEqual(userDoc.paths!['/health']!.get!.security, [], 'open on purpose, and saying so');
    // Deny by default: every operation but the service's probes runs as the caller.
    for (const [path, item] of Object.entries(userDoc.paths!)) {
      for (const operation of [item.get, item.post].filter((op) => op !== undefined)) {
        const probe = operation.tags?.includes('service') === true;
        assert.equal((operation.security?.length ?? 0) > 0, !probe, `${path} ${operation.operationId}`);
      }
    }
    const serviceDoc = buildOpenApiDocument('test');
    assert.deepEqual(Object.keys(serviceDoc.components?.securitySchemes ?? {}), []);
    assert.deepEqual(serviceDoc.paths!['/trips/count']!.get!.security, []);
    assert.equal(serviceDoc.paths!['/trips/count']!.get!.responses!['401'], undefined);
  });
});

describe('per-user credentials', () => {
  test('minted once per user and reused; concurrent first requests share one verification and one credential', async () => {
    const email = 'fresh@example.com';
    await createUserRoles(lb.admin, { [email]: ['SELECT'] });
    const token = lb.emulator.createUserToken(email);
    const meBefore = lb.emulator.stats.byRoute['GET /api/2.0/preview/scim/v2/Me'] ?? 0;
    const responses = await Promise.all(Array.from({ length: 10 }, (_, i) => service.api.get(`/trips/${i + 1}`, { headers: asUser(email, token) })));
    assert.deepEqual(
      responses.map((r) => r.status),
      Array(10).fill(200),
    );
    for (let i = 0; i < 10; i++) assert.equal((await service.api.get('/trips/sample', { headers: asUser(email, token) })).status, 200);
    assert.equal(lb.emulator.credentialsFor(email), 1);
    assert.equal((lb.emulator.stats.byRoute['GET /api/2.0/preview/scim/v2/Me'] ?? 0) - meBefore, 1);
  });

  test("one user's failure never touches another's requests", async () => {
    const good = Promise.all(Array.from({ length: 30 }, (_, i) => service.api.get(`/trips/${(i % 20) + 1}`, as(READER))));
    const bad = Promise.all(Array.from({ length: 30 }, () => service.api.get('/trips/sample', { headers: asUser(READER, 'emu-user-revoked0123456789') })));
    const [ok, refused] = await Promise.all([good, bad]);
    assert.deepEqual(
      ok.map((r) => r.status),
      Array(30).fill(200),
    );
    assert.deepEqual(
      refused.map((r) => r.status),
      Array(30).fill(401),
    );
  });

  test("a refused login (credential revoked) renews that user's credential once and succeeds", async () => {
    const email = 'revoked@example.com';
    await createUserRoles(lb.admin, { [email]: ['SELECT'] });
    const token = lb.emulator.createUserToken(email);
    assert.equal((await service.api.get('/trips/1', { headers: asUser(email, token) })).status, 200);
    await lb.emulator.revoke(email);
    // Close the user's pooled connections so the next request must log in again.
    await lb.admin.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1', [email]);
    await waitFor('the service to drop the terminated connections', () => service.ctx.userAccess!.connectionsOf({ email }) === 0);
    const after = await service.api.get('/trips/2', { headers: asUser(email, token) });
    assert.equal(after.status, 200, after.text);
    assert.equal(lb.emulator.credentialsFor(email), 2);
  });
});
