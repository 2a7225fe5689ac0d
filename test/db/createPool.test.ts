import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { loadConfig } from '../../lib/ground/config.ts';
import type { ConnectionTarget, PasswordSource } from '../../lib/db/connectionTarget.ts';
import { createPool } from '../../lib/db/createPool.ts';
import { Database } from '../../lib/db/database.ts';
import { Forbidden, Unavailable } from '../../lib/errors.ts';
import { startTestDatabase, type TestDatabase } from '../support/testService.ts';

/**
 * A password source that cannot give a password (the workspace is down, no valid token) must not
 * cost the database anything. pg asks for the password only after it has opened the socket and
 * sent the startup message, and leaves that socket open when the password function fails: each
 * such attempt left a half-open backend waiting for its authentication_timeout (60 s), and under
 * load they filled max_connections ("sorry, too many clients already") for every client of the
 * database, well past the outage (found by test/reliability/tokenFaults.test.ts).
 */
let database: TestDatabase;

before(async () => {
  database = await startTestDatabase(10);
});
after(async () => {
  await database?.stop();
});

function failingSource(error: () => Error): PasswordSource {
  return {
    getPassword: async () => {
      throw error();
    },
    refresh: async () => undefined,
    state: () => ({
      valid: false,
      expiresAt: null,
      secondsToExpiry: null,
      ageSeconds: null,
      lastRefreshAt: null,
      lastError: 'down',
      refreshCount: 0,
      refreshFailures: 1,
    }),
    stop: async () => undefined,
  };
}

function targetWith(password: PasswordSource): ConnectionTarget {
  const { server } = database;
  return {
    mode: 'lakebase-provisioned',
    host: server.host,
    port: server.port,
    database: server.database,
    user: server.user,
    password,
    ssl: false,
    description: 'test',
    close: async () => undefined,
  };
}

/**
 * Backends still in authentication: invisible in pg_stat_activity, but each holds a connection
 * slot; Postgres names them in their process title (`postgres: user db host(port) authentication`).
 */
function backendsInAuthentication(): number {
  let count = 0;
  for (const pid of readdirSync('/proc').filter((name) => /^\d+$/.test(name))) {
    try {
      const title = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ').trim();
      if (/^postgres: .* authentication$/.test(title)) count++;
    } catch {
      // the process ended meanwhile
    }
  }
  return count;
}

test('a password source that fails opens no connection to the database: 503, and no half-open backend left', async () => {
  const pool = createPool(
    targetWith(failingSource(() => new Error('workspace unreachable: ECONNREFUSED'))),
    loadConfig({ DB_POOL_SIZE: '1', DB_MAX_OVERFLOW: '9' }),
  );
  const db = new Database(pool);
  const before = backendsInAuthentication();
  try {
    const results = await Promise.allSettled(Array.from({ length: 40 }, () => db.query({ text: 'SELECT 1' })));
    assert.equal(backendsInAuthentication(), before, 'no half-open backend was left waiting for a password');
    for (const result of results) {
      assert.equal(result.status, 'rejected');
      assert.ok((result as PromiseRejectedResult).reason instanceof Unavailable, String((result as PromiseRejectedResult).reason));
      assert.equal((result as PromiseRejectedResult).reason.status, 503);
    }
  } finally {
    await pool.end();
  }
});

test("a typed refusal from the password source (a user's 403) reaches the caller as it is", async () => {
  const pool = createPool(targetWith(failingSource(() => new Forbidden('no database credential for this user'))), loadConfig({}));
  try {
    await assert.rejects(new Database(pool).query({ text: 'SELECT 1' }), (err: unknown) => err instanceof Forbidden);
  } finally {
    await pool.end();
  }
});
