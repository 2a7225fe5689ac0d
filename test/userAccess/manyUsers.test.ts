import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import pg from 'pg';
import request from 'supertest';
import { listenOnLoopback, type RunningHttpServer } from '../support/httpHarness.ts';
import { asUser, TRIPS, startUserModeService, type UserModeService } from '../support/lakebaseService.ts';
import { linesLeakingSecrets, startEmulatedLakebase, waitFor, type EmulatedLakebase } from '../support/workspaceEmulator.ts';

/**
 * LAKEBASE_ACCESS=user with many users at once: 200 distinct users, each with their own Postgres
 * login, against a ceiling of 20 connections (2 per user: at most 10 user pools at a time). The
 * ceiling must hold at every instant, as Postgres itself sees it (pg_stat_activity), and nobody
 * may fail: a user without a pool waits for the least recently used idle one to close.
 */
const USERS = 200;
const REQUESTS_PER_USER = 3;
const CEILING = 20;
const PER_USER = 2;
const APPLICATION_NAME = 'lakebase-api (on behalf of a user)';

let lb: EmulatedLakebase;
let service: UserModeService;
let http: RunningHttpServer;
const users: Array<{ email: string; token: string }> = [];

before(async () => {
  lb = await startEmulatedLakebase({ rows: 500, emulator: { grantRoles: [] } });
  // One group role holds the grant; each user's own role (their e-mail, as on Lakebase) is a member.
  await lb.admin.query(`CREATE ROLE trips_readers NOLOGIN`);
  await lb.admin.query(`GRANT SELECT ON ${TRIPS} TO trips_readers`);
  for (let i = 0; i < USERS; i++) {
    const email = `user${String(i).padStart(3, '0')}@example.com`;
    await lb.admin.query(`CREATE ROLE ${pg.escapeIdentifier(email)} LOGIN IN ROLE trips_readers`);
    users.push({ email, token: lb.emulator.createUserToken(email) });
  }
  service = await startUserModeService(lb, {
    env: { DB_USER_CONNECTIONS_MAX: String(CEILING), DB_USER_POOL_SIZE: String(PER_USER), DB_POOL_TIMEOUT: '60' },
  });
  http = await listenOnLoopback(service);
});

after(async () => {
  await http?.close();
  await service?.close();
  await lb?.stop();
});

test(`${USERS} users at once stay within ${CEILING} connections with zero failures`, async () => {
  let sampling = true;
  let maxBackends = 0;
  let maxPoolConnections = 0;
  let samples = 0;
  const sampler = (async () => {
    while (sampling) {
      const { rows } = await lb.admin.query<{ n: number }>('SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1', [APPLICATION_NAME]);
      maxBackends = Math.max(maxBackends, rows[0]!.n);
      maxPoolConnections = Math.max(maxPoolConnections, service.ctx.userAccess!.stats().connections);
      samples++;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  })();

  const credentialsBefore = lb.emulator.stats.credentialsIssued;
  const failures: string[] = [];
  const latencies: number[] = [];
  const started = Date.now();
  const load = Promise.all(
    users.map(async ({ email, token }, i) => {
      // Two at once (a point lookup and an uncached random sample: the user's pool opens both its
      // connections), then the user's own cached count.
      const get = async (path: string) => {
        const t0 = Date.now();
        const response = await fetch(`${http.baseUrl}${path}`, { headers: asUser(email, token) });
        const body = await response.text();
        latencies.push(Date.now() - t0);
        if (response.status !== 200) failures.push(`${email} ${path}: ${response.status} ${body}`);
      };
      await Promise.all([get(`/trips/${(i % 500) + 1}`), get('/trips/sample')]);
      await get('/trips/count');
    }),
  );
  try {
    await load;
  } finally {
    sampling = false;
    await sampler;
  }
  const elapsed = Date.now() - started;

  const stats = service.ctx.userAccess!.stats();
  latencies.sort((a, b) => a - b);
  const figures = {
    users: USERS,
    requests: USERS * REQUESTS_PER_USER,
    failures: failures.length,
    seconds: elapsed / 1000,
    p50Ms: latencies[Math.floor(latencies.length * 0.5)],
    p99Ms: latencies[Math.floor(latencies.length * 0.99)],
    ceiling: stats.ceiling,
    maxBackendsSeen: maxBackends,
    maxPoolConnections,
    samples,
    poolsCreated: stats.created,
    poolsClosed: stats.closed,
    waitedForSlot: stats.waited,
    credentialsMinted: lb.emulator.stats.credentialsIssued - credentialsBefore,
  };
  console.log(`user-access: ${JSON.stringify(figures)}`);

  assert.deepEqual(failures.slice(0, 5), []);
  assert.equal(stats.ceiling, CEILING);
  assert.ok(maxBackends <= CEILING, `Postgres saw ${maxBackends} user connections, ceiling ${CEILING}`);
  assert.ok(maxPoolConnections <= CEILING, `the pools held ${maxPoolConnections} connections, ceiling ${CEILING}`);
  assert.ok(maxBackends >= PER_USER, 'the sampler must have seen the load (else the bound proves nothing)');
  assert.ok(stats.created >= USERS, 'every user had a pool of their own');
  // Every user logged in as themselves: one credential each (pools re-opened later reuse it).
  assert.equal(figures.credentialsMinted, USERS);
  const audited = new Set(
    service.logs
      .records()
      .filter((r) => r.status === 200 && typeof r.user === 'string')
      .map((r) => r.user),
  );
  assert.equal(audited.size, USERS);
  assert.deepEqual(linesLeakingSecrets(service.logs.lines, [...lb.emulator.secrets(), ...users.map((u) => u.token)]), []);
});

test('once their pools exist, users keep being served from them: no new logins, no waiting', async () => {
  const active = users.slice(0, CEILING / PER_USER);
  // Make these the most recently used pools.
  for (const { email, token } of active) assert.equal((await fetch(`${http.baseUrl}/trips/sample`, { headers: asUser(email, token) })).status, 200);
  const before = service.ctx.userAccess!.stats();
  const responses = await Promise.all(
    Array.from({ length: 200 }, (_, i) => {
      const { email, token } = active[i % active.length]!;
      return fetch(`${http.baseUrl}/trips/sample`, { headers: asUser(email, token) }).then(async (r) => [r.status, await r.text()] as const);
    }),
  );
  assert.deepEqual(
    responses.filter(([status]) => status !== 200),
    [],
  );
  const afterStats = service.ctx.userAccess!.stats();
  assert.equal(afterStats.created, before.created, 'no pool was opened');
  assert.equal(afterStats.closed, before.closed, 'no pool was closed');
  assert.ok(afterStats.connections <= CEILING);
});

test('beyond the ceiling a request waits DB_POOL_TIMEOUT, then 503 with Retry-After; served again as soon as a pool frees up', async () => {
  // One pool in all (ceiling 2, 2 per user): while user A's request is blocked on a lock, user B has no pool to take.
  const tight = await startUserModeService(lb, { env: { DB_USER_CONNECTIONS_MAX: '2', DB_USER_POOL_SIZE: '2', DB_POOL_TIMEOUT: '0.5' } });
  const locker = await lb.admin.connect();
  const [a, b] = users;
  try {
    await locker.query('BEGIN');
    await locker.query(`LOCK TABLE ${TRIPS} IN ACCESS EXCLUSIVE MODE`);
    const blocked = tight.api.get('/trips/1', { headers: asUser(a!.email, a!.token) });
    await waitFor('user A to hold the only pool', () => tight.ctx.userAccess!.stats().pools === 1);
    const started = Date.now();
    const refused = await tight.api.get('/trips/2', { headers: asUser(b!.email, b!.token) });
    const waited = Date.now() - started;
    assert.equal(refused.status, 503, refused.text);
    assert.equal(refused.headers['retry-after'], '5');
    assert.match(refused.body.detail, /DB_USER_CONNECTIONS_MAX/);
    assert.ok(waited >= 450 && waited < 5000, `waited ${waited} ms for DB_POOL_TIMEOUT=0.5`);
    await locker.query('COMMIT');
    assert.equal((await blocked).status, 200);
    assert.equal((await tight.api.get('/trips/2', { headers: asUser(b!.email, b!.token) })).status, 200);
    assert.equal(tight.ctx.userAccess!.stats().rejected, 1);
    const metrics = await request(tight.app).get('/metrics');
    assert.match(metrics.text, /^lakebase_api_user_pool_rejections_total 1$/m);
    assert.match(metrics.text, /^lakebase_api_user_pool_max_connections 2$/m);
  } finally {
    await locker.query('ROLLBACK').catch(() => undefined);
    locker.release();
    await tight.close();
  }
});
