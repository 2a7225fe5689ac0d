import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startLakebaseService, startUserModeService, type LakebaseService } from '../support/lakebaseService.ts';
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
import { linesLeakingSecrets, startEmulatedLakebase, TEST_SERVICE_PRINCIPAL, type EmulatedLakebase } from '../support/workspaceEmulator.ts';

/**
 * AUTH_MODE=databricks-token against the workspace emulator: the caller's own Databricks token
 * (OAuth or PAT) in `Authorization: Bearer`, verified with SCIM Me. With LAKEBASE_ACCESS=user the
 * same token mints the caller's Postgres login, so through Lambda each caller runs as themselves.
 */
const EDITOR = 'editor@example.com';
const READER = 'reader@example.com';

let lb: EmulatedLakebase;
const tokens: Record<string, string> = {};
const bearer = (email: string): SendOptions => ({ headers: { authorization: `Bearer ${tokens[email]}` } });
const write = (email: string, vendor: string): SendOptions => ({
  headers: { ...bearer(email).headers, 'content-type': 'application/json' },
  body: JSON.stringify({ vendor_id: vendor }),
});
const problem = (exchange: Exchange) => JSON.parse(exchange.text) as { field?: string; detail: string; operation?: string };

before(async () => {
  lb = await startEmulatedLakebase({ rows: 300 });
  tokens[EDITOR] = lb.emulator.createUserToken(EDITOR, { groups: ['trip-editors'] });
  tokens[READER] = lb.emulator.createUserToken(READER, { groups: ['analysts'] });
});
after(async () => {
  await lb?.stop();
});

/** Sends through every runtime; all must agree on the status. */
async function everywhere(transports: Transport[], method: string, url: string, options: SendOptions = {}): Promise<Exchange> {
  const results: Exchange[] = [];
  for (const transport of transports) results.push(await transport.send(method, url, options));
  for (const [i, exchange] of results.entries()) assert.equal(exchange.status, results[0]!.status, `${transports[i]!.name}: ${exchange.text}`);
  return results[0]!;
}

describe('AUTH_MODE=databricks-token, the service logging in as itself', () => {
  let service: LakebaseService;
  let transports: Transport[];
  let h2c: Awaited<ReturnType<typeof h2cTransport>>;

  before(async () => {
    service = await startLakebaseService(lb, { env: { AUTH_MODE: 'databricks-token', AUTH_WRITERS: 'trip-editors' } });
    h2c = await h2cTransport(service.ctx);
    transports = [expressTransport(service.ctx), h2c, fetchTransport(service.ctx), lambdaV2Transport(service.ctx), lambdaV1Transport(service.ctx)];
  });
  after(async () => {
    await h2c?.close();
    await service?.close();
  });

  test('a workspace token reads; none, or one the workspace refuses, is a 401 with an RFC 6750 challenge', async () => {
    const ok = await everywhere(transports, 'GET', '/trips/42', bearer(READER));
    assert.equal(ok.status, 200);
    assert.equal(JSON.parse(ok.text).id, 42);
    const missing = await everywhere(transports, 'GET', '/trips/42');
    assert.equal(missing.status, 401);
    assert.equal(missing.headers['www-authenticate'], 'Bearer realm="lakebase-api"');
    const forged = await everywhere(transports, 'GET', '/trips/42', { headers: { authorization: 'Bearer dapi-not-a-token-the-workspace-knows' } });
    assert.equal(forged.status, 401);
    assert.match(forged.headers['www-authenticate']!, /error="invalid_token"/);
    assert.equal(problem(forged).field, 'authorization');
  });

  test('AUTH_WRITERS by workspace group (from SCIM Me): the editor writes, the reader gets 403 naming the operation', async () => {
    assert.equal((await everywhere(transports, 'POST', '/trips/30/vendor', write(EDITOR, '2'))).status, 200);
    const refused = await everywhere(transports, 'POST', '/trips/30/vendor', write(READER, '1'));
    assert.equal(refused.status, 403);
    assert.equal(problem(refused).operation, 'updateTripVendor');
    assert.match(problem(refused).detail, /reader@example\.com may not run updateTripVendor/);
  });

  test('one SCIM Me call per token, however many requests; the caller in each log line, no token in any', async () => {
    const route = 'GET /api/2.0/preview/scim/v2/Me';
    const token = lb.emulator.createUserToken('fresh@example.com');
    const before = lb.emulator.stats.byRoute[route] ?? 0;
    const answers = await Promise.all(
      Array.from({ length: 8 }, () => transports[0]!.send('GET', '/trips/count', { headers: { authorization: `Bearer ${token}` } })),
    );
    assert.ok(answers.every((a) => a.status === 200));
    assert.equal((lb.emulator.stats.byRoute[route] ?? 0) - before, 1, 'concurrent requests share one verification');
    const lines = service.logs.records().filter((r) => r.route === '/trips/count' && r.status === 200);
    assert.ok(lines.some((r) => r.user === 'fresh@example.com'));
    assert.deepEqual(
      linesLeakingSecrets(service.logs.lines, [...Object.values(tokens), token, ...lb.emulator.secrets(), TEST_SERVICE_PRINCIPAL.clientSecret]),
      [],
    );
  });

  test('the document offers a bearer scheme on every guarded operation', () => {
    const { document } = service.router;
    assert.deepEqual(Object.keys(document.components?.securitySchemes ?? {}), ['databricksToken']);
    assert.deepEqual(document.paths!['/trips/{trip_id}']!.get!.security, [{ databricksToken: [] }]);
    assert.deepEqual(document.paths!['/health']!.get!.security, []);
  });
});

describe('AUTH_MODE=databricks-token with LAKEBASE_ACCESS=user, on Lambda', () => {
  let service: LakebaseService;
  let lambda: Transport;

  before(async () => {
    service = await startUserModeService(lb, { env: { AUTH_MODE: 'databricks-token' } });
    lambda = lambdaV2Transport(service.ctx);
  });
  after(async () => {
    await service?.close();
  });

  test("each caller's requests log in to Postgres as that caller, with a credential minted from their own token", async () => {
    for (const email of [EDITOR, READER]) {
      const mintedBefore = lb.emulator.credentialsFor(email);
      const answer = await lambda.send('GET', '/trips/count', bearer(email));
      assert.equal(answer.status, 200, answer.text);
      assert.equal(JSON.parse(answer.text).total_trips, 300);
      assert.ok(lb.emulator.credentialsFor(email) > mintedBefore, `a Postgres credential was minted for ${email}`);
      assert.ok(service.ctx.userAccess!.connectionsOf({ email }) > 0, `${email} has connections of their own`);
      assert.equal(answer.headers.vary, 'Authorization', 'per-user answers vary by the token');
    }
    const { rows } = await lb.admin.query<{ usename: string }>(
      "SELECT DISTINCT usename FROM pg_stat_activity WHERE application_name LIKE 'lakebase-api (on behalf of a user)%'",
    );
    assert.deepEqual(rows.map((r) => r.usename).sort(), [EDITOR, READER]);
    assert.equal((await lambda.send('GET', '/trips/count')).status, 401, 'no token, no login');
  });

  test('the forwarded-header path is not an alternative: proxy headers without a bearer token are refused', async () => {
    const answer = await lambda.send('GET', '/trips/count', { headers: { 'x-forwarded-email': READER, 'x-forwarded-access-token': tokens[READER]! } });
    assert.equal(answer.status, 401);
  });
});
