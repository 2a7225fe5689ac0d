import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import {
  TEST_ENDPOINT,
  TEST_INSTANCE,
  TEST_SERVICE_PRINCIPAL,
  TEST_USER,
  startEmulatedLakebase,
  waitFor,
  type EmulatedLakebase,
} from '../support/workspaceEmulator.ts';

/** The emulator on its own, over plain HTTP: the contract the SDK-based tests rely on. */
describe('workspace emulator', () => {
  let lb: EmulatedLakebase;
  let pat: string;

  before(async () => {
    lb = await startEmulatedLakebase({ tokenLifetimeSeconds: 2, rows: 10 });
    pat = lb.emulator.patFor(TEST_USER);
  });
  after(async () => {
    await lb?.stop();
  });

  const call = (method: string, path: string, options: { token?: string; body?: unknown; headers?: Record<string, string> } = {}) =>
    fetch(`${lb.emulator.url}${path}`, {
      method,
      headers: {
        ...(options.token ? { authorization: `Bearer ${options.token}` } : {}),
        ...(options.body !== undefined ? { 'content-type': 'application/json' } : {}),
        ...options.headers,
      },
      body: options.body === undefined ? undefined : typeof options.body === 'string' ? options.body : JSON.stringify(options.body),
    });

  const login = async (user: string, password: string) => {
    const client = new pg.Client({ host: lb.db.host, port: lb.db.port, database: lb.db.database, user, password });
    client.on('error', () => undefined);
    await client.connect();
    return client;
  };

  const loginError = async (user: string, password: string): Promise<string | undefined> => {
    try {
      const client = await login(user, password);
      await client.end();
      return undefined;
    } catch (err) {
      return (err as { code?: string }).code;
    }
  };

  test('serves OIDC discovery and issues client-credentials tokens to a known service principal only', async () => {
    const discovery = await call('GET', '/oidc/.well-known/oauth-authorization-server');
    assert.equal(discovery.status, 200);
    const endpoints = (await discovery.json()) as { token_endpoint: string; authorization_endpoint: string };
    assert.equal(endpoints.token_endpoint, `${lb.emulator.url}/oidc/v1/token`);

    const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`;
    const form = { 'content-type': 'application/x-www-form-urlencoded' };
    const ok = await fetch(endpoints.token_endpoint, {
      method: 'POST',
      headers: { ...form, authorization: basic(TEST_SERVICE_PRINCIPAL.clientId, TEST_SERVICE_PRINCIPAL.clientSecret) },
      body: 'grant_type=client_credentials&scope=all-apis',
    });
    assert.equal(ok.status, 200);
    const token = (await ok.json()) as { access_token: string; expires_in: number; token_type: string };
    assert.equal(token.token_type, 'Bearer');
    assert.equal(token.expires_in, 3600);

    const me = await call('GET', '/api/2.0/preview/scim/v2/Me', { token: token.access_token });
    assert.equal(((await me.json()) as { userName: string }).userName, TEST_SERVICE_PRINCIPAL.clientId);

    const bad = await fetch(endpoints.token_endpoint, {
      method: 'POST',
      headers: { ...form, authorization: basic(TEST_SERVICE_PRINCIPAL.clientId, 'wrong') },
      body: 'grant_type=client_credentials&scope=all-apis',
    });
    assert.equal(bad.status, 401);
    assert.equal(((await bad.json()) as { error: string }).error, 'invalid_client');
  });

  test('checks bearer tokens on the API', async () => {
    assert.equal((await call('GET', '/api/2.0/preview/scim/v2/Me')).status, 401);
    assert.equal((await call('GET', '/api/2.0/preview/scim/v2/Me', { token: 'dapi-not-issued' })).status, 401);
    const me = await call('GET', '/api/2.0/preview/scim/v2/Me', { token: pat });
    assert.equal(me.status, 200);
    assert.equal(((await me.json()) as { userName: string }).userName, TEST_USER);
    const userToken = lb.emulator.createUserToken('someone@example.com');
    assert.equal(lb.emulator.identityOf(userToken)?.userName, 'someone@example.com');
  });

  test('looks up instances and endpoints, with Databricks-style errors', async () => {
    const instance = await call('GET', `/api/2.0/database/instances/${TEST_INSTANCE}`, { token: pat });
    assert.equal(instance.status, 200);
    const body = (await instance.json()) as { state: string; read_write_dns: string };
    assert.equal(body.state, 'AVAILABLE');
    assert.equal(body.read_write_dns, lb.db.host);

    const missing = await call('GET', '/api/2.0/database/instances/nope', { token: pat });
    assert.equal(missing.status, 404);
    assert.equal(((await missing.json()) as { error_code: string }).error_code, 'RESOURCE_DOES_NOT_EXIST');

    const endpoint = await call('GET', `/api/2.0/postgres/${TEST_ENDPOINT}`, { token: pat });
    assert.equal(endpoint.status, 200);
    assert.equal(((await endpoint.json()) as { status: { hosts: { host: string } } }).status.hosts.host, lb.db.host);

    lb.emulator.setInstance({ name: 'private', accessibleBy: ['someone-else@example.com'] });
    const forbidden = await call('POST', '/api/2.0/database/credentials', { token: pat, body: { instance_names: ['private'], request_id: 'x' } });
    assert.equal(forbidden.status, 403);
  });

  test('mints real passwords: expiry is enforced at login only, open sessions continue', async () => {
    const minted = await call('POST', '/api/2.0/database/credentials', { token: pat, body: { instance_names: [TEST_INSTANCE], request_id: 'a' } });
    assert.equal(minted.status, 200);
    const { token, expiration_time } = (await minted.json()) as { token: string; expiration_time: string };
    const expiresAt = Date.parse(expiration_time);
    assert.ok(expiresAt > Date.now() && expiresAt <= Date.now() + 2500);

    const open = await login(TEST_USER, token);
    try {
      assert.equal((await open.query('SELECT count(*)::int AS n FROM public.nyc_train_synced')).rows[0].n, 10);
      assert.equal(await loginError(TEST_USER, 'not-the-token'), '28P01');
      // After VALID UNTIL, a new login with the same token is refused...
      await waitFor('the token to expire', async () => (await loginError(TEST_USER, token)) === '28P01', 5000, 100);
      // ...while the session opened before keeps working, as on Lakebase.
      assert.equal((await open.query('SELECT 1 AS one')).rows[0].one, 1);
    } finally {
      await open.end();
    }
  });

  test('Autoscaling credentials have expire_time; minting for one identity ends its previous token', async () => {
    const mint = async () => {
      const response = await call('POST', '/api/2.0/postgres/credentials', { token: pat, body: { endpoint: TEST_ENDPOINT } });
      assert.equal(response.status, 200);
      return (await response.json()) as { token: string; expire_time: string };
    };
    const first = await mint();
    assert.ok(Date.parse(first.expire_time) > Date.now());
    assert.equal(await loginError(TEST_USER, first.token), undefined);
    const second = await mint();
    assert.equal(await loginError(TEST_USER, second.token), undefined);
    assert.equal(await loginError(TEST_USER, first.token), '28P01');
    const missing = await call('POST', '/api/2.0/postgres/credentials', { token: pat, body: { endpoint: 'projects/x/branches/y/endpoints/z' } });
    assert.equal(missing.status, 404);
  });

  test('revoke ends the current token for new logins', async () => {
    const response = await call('POST', '/api/2.0/database/credentials', { token: pat, body: { instance_names: [TEST_INSTANCE] } });
    const { token } = (await response.json()) as { token: string };
    assert.equal(await loginError(TEST_USER, token), undefined);
    await lb.emulator.revoke(TEST_USER);
    assert.equal(await loginError(TEST_USER, token), '28P01');
  });

  test('injects faults: status, delay, reset, and down entirely', async () => {
    lb.emulator.setFault({ kind: 'status', status: 503 }, { match: 'me', times: 1 });
    assert.equal((await call('GET', '/api/2.0/preview/scim/v2/Me', { token: pat })).status, 503);
    assert.equal((await call('GET', '/api/2.0/preview/scim/v2/Me', { token: pat })).status, 200);

    lb.emulator.setFault({ kind: 'delay', ms: 300 }, { match: 'me', times: 1 });
    const started = Date.now();
    assert.equal((await call('GET', '/api/2.0/preview/scim/v2/Me', { token: pat })).status, 200);
    assert.ok(Date.now() - started >= 280);

    lb.emulator.setFault({ kind: 'reset' }, { match: /scim/, times: 1 });
    await assert.rejects(call('GET', '/api/2.0/preview/scim/v2/Me', { token: pat }));

    await lb.emulator.down();
    // The first call may fail on a kept-alive socket the shutdown closed; after that, the port refuses.
    await assert.rejects(call('GET', '/api/2.0/preview/scim/v2/Me', { token: pat }));
    await assert.rejects(
      call('GET', '/api/2.0/preview/scim/v2/Me', { token: pat }),
      (err: Error & { cause?: { code?: string } }) => err.cause?.code === 'ECONNREFUSED',
    );
    await lb.emulator.up();
    assert.equal((await call('GET', '/api/2.0/preview/scim/v2/Me', { token: pat })).status, 200);
    assert.ok(lb.emulator.stats.faultsInjected >= 3);
  });
});
