import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { loadConfig } from '../../lib/ground/config.ts';
import { createContext } from '../../lib/context.ts';
import type { Context } from '../../lib/http/serviceContext.ts';
import { ApiError } from '../../lib/errors.ts';
import { watchProcessFaults } from '../support/processFaults.ts';
import { captureLogs } from '../support/logCapture.ts';
import { startTestDatabase, type TestDatabase } from '../support/testService.ts';

let database: TestDatabase;
let ctx: Context;
before(async () => {
  database = await startTestDatabase(10);
  const { server } = database;
  ctx = await createContext({
    config: loadConfig({ DB_POOL_SIZE: '1', DB_MAX_OVERFLOW: '1' }),
    logger: captureLogs().logger,
    version: 'test',
    warm: false,
    target: { ...server, mode: 'postgres', ssl: false, description: 'test', close: async () => undefined },
  });
});
after(async () => {
  await ctx?.close();
  await database?.stop();
});

test('a connection lost between the statements of a transaction is a 503, not a crash, and is not reused', async () => {
  const faults = watchProcessFaults();
  try {
    const outcome = await ctx.db
      .transaction(async (client) => {
        const { rows } = await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
        const ended = new Promise((resolve) => client.once('end', resolve));
        // A restart or failover ends the session while the transaction waits between statements.
        await database.admin.query('SELECT pg_terminate_backend($1)', [rows[0]!.pid]);
        await ended;
        return client.query('SELECT 1');
      })
      .then(
        () => undefined,
        (err: unknown) => err,
      );

    assert.ok(outcome instanceof ApiError, 'the transaction fails with a typed error');
    assert.equal(outcome.status, 503);
    assert.deepEqual(faults.faults, [], 'no uncaught error event');
    assert.equal(ctx.pool.totalCount, 0, 'the dead connection left the pool');
    const { rows } = await ctx.db.query<{ one: number }>({ text: 'SELECT 1 AS one' });
    assert.equal(rows[0]!.one, 1, 'the next statement gets a fresh connection');
  } finally {
    faults.stop();
  }
});
