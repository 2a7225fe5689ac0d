import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import pg from 'pg';
import type { KeyBatcherStats } from '../../lib/db/keyBatcher.ts';
import { asUser, createUserRoles, startUserModeService, TRIPS, type UserModeService } from '../support/lakebaseService.ts';
import { pollUntil } from '../support/pollUntil.ts';
import { startRestartableTestDatabase, type RestartableTestDatabase } from '../support/restartableDatabase.ts';
import { enableStatementCounting, statementCallsByRole } from '../support/statementCounts.ts';
import { startEmulatedLakebase, type EmulatedLakebase } from '../support/workspaceEmulator.ts';

/**
 * LAKEBASE_ACCESS=user with batched point lookups (GET /trips/{trip_id}, and the generated
 * GET /rides/{id}): lookups of several users in flight at the same moment are gathered per user,
 * each batch on that user's own connection, so Postgres' grants and row-level security apply to
 * every key exactly as they would alone. A batch that mixed users would answer one user's key with
 * the other's rows: a 404 for a trip they may see, or a trip they may not.
 */
const ROWS = 400;
const VENDOR1 = 'vendor-one@example.com';
const VENDOR2 = 'vendor-two@example.com';
const NOBODY = 'nobody@example.com';
const IDS = Array.from({ length: 40 }, (_, i) => 1 + i * 7).concat([ROWS + 3]);

let database: RestartableTestDatabase;
let lb: EmulatedLakebase;
let service: UserModeService;
const tokens: Record<string, string> = {};
/** Each trip's vendor, as the database has it. */
const vendorOf = new Map<number, string>();

before(async () => {
  database = await startRestartableTestDatabase(ROWS);
  await enableStatementCounting(database);
  lb = await startEmulatedLakebase({ database: { db: database.server, admin: database.admin }, emulator: { grantRoles: [] } });
  await createUserRoles(lb.admin, { [VENDOR1]: ['SELECT'], [VENDOR2]: ['SELECT'], [NOBODY]: [] });
  for (const email of [VENDOR1, VENDOR2, NOBODY]) tokens[email] = lb.emulator.createUserToken(email);
  await lb.admin.query(`ALTER TABLE ${TRIPS} ENABLE ROW LEVEL SECURITY`);
  await lb.admin.query(`CREATE POLICY vendor_one ON ${TRIPS} TO ${pg.escapeIdentifier(VENDOR1)} USING (vendor_id = '1')`);
  await lb.admin.query(`CREATE POLICY vendor_two ON ${TRIPS} TO ${pg.escapeIdentifier(VENDOR2)} USING (vendor_id = '2')`);
  const { rows } = await lb.admin.query<{ id: number; vendor_id: string }>(`SELECT id::int AS id, vendor_id FROM ${TRIPS}`);
  for (const row of rows) vendorOf.set(row.id, row.vendor_id);
  // The cache off: every lookup reaches the database.
  service = await startUserModeService(lb, { env: { CACHE_ENABLED: 'false' } });
});
after(async () => {
  await service?.close();
  await lb?.stop();
  await database?.stop();
});

/** The user's batcher for `name`, through the same per-user handle the requests use; undefined before its first lookup. */
async function batcherStats(email: string, name: string): Promise<KeyBatcherStats | undefined> {
  try {
    return await service.ctx.userAccess!.withDatabase({ email }, async (db) =>
      db
        .batcher(name, () => {
          throw new Error('no lookup yet');
        })
        .stats(),
    );
  } catch {
    return undefined;
  }
}

/** Holds ACCESS EXCLUSIVE on the trips table until released: every lookup statement waits meanwhile. */
async function lockTable(): Promise<() => Promise<void>> {
  const client = await lb.admin.connect();
  await client.query('BEGIN');
  await client.query(`LOCK TABLE ${TRIPS} IN ACCESS EXCLUSIVE MODE`);
  let released = false;
  return async () => {
    if (released) return;
    released = true;
    await client.query('COMMIT');
    client.release();
  };
}

for (const { path, batcher, statement } of [
  { path: '/trips', batcher: 'trip_by_id', statement: 'id = ANY($1::bigint[])' },
  { path: '/rides', batcher: 'getRide', statement: 'WITH ORDINALITY AS k(k1, n)' },
]) {
  test(`${path}/{id}: three users' lookups all in flight at once, batched per user; each sees only what Postgres lets them`, async () => {
    const users = [VENDOR1, VENDOR2, NOBODY];
    // Every user's pool exists before the table is locked (their first login reads the catalog).
    for (const email of users) await service.api.get(`${path}/1`, { headers: asUser(email, tokens[email]!) });
    await lb.admin.query('SELECT pg_stat_statements_reset()');
    const before = new Map<string, number>();
    for (const email of users) before.set(email, (await batcherStats(email, batcher))?.lookups ?? 0);

    const release = await lockTable();
    let answers: Array<{ email: string; id: number; status: number; body: { id?: number; vendor_id?: string }; text: string }>;
    try {
      // Interleaved: the users' requests arrive mixed, as they would from one proxy.
      const calls = IDS.flatMap((id) => users.map((email) => ({ email, id })));
      const pending = calls.map(async ({ email, id }) => {
        const answer = await service.api.get(`${path}/${id}`, { headers: asUser(email, tokens[email]!) });
        return { email, id, status: answer.status, body: answer.body, text: answer.text };
      });
      await pollUntil('every lookup queued in its user batcher', 10_000, async () => {
        for (const email of users) if (((await batcherStats(email, batcher))?.lookups ?? 0) - before.get(email)! < IDS.length) return undefined;
        return true;
      });
      await release();
      answers = await Promise.all(pending);
    } finally {
      await release();
    }

    for (const { email, id, status, body, text } of answers) {
      if (email === NOBODY) {
        assert.equal(status, 403, `${email} ${path}/${id}: ${text}`);
        continue;
      }
      const visible = vendorOf.get(id) === (email === VENDOR1 ? '1' : '2');
      assert.equal(status, visible ? 200 : 404, `${email} ${path}/${id}: ${text}`);
      if (visible) {
        assert.equal(body.id, id);
        assert.equal(body.vendor_id, vendorOf.get(id));
      }
    }
    // Counted by Postgres, per role: each user's lookups ran as that user, in a few statements.
    const calls = await statementCallsByRole(lb.admin, statement);
    for (const email of [VENDOR1, VENDOR2]) {
      const count = calls.get(email) ?? 0;
      assert.ok(count >= 1 && count <= 4, `${email}'s ${IDS.length} concurrent lookups ran ${count} statements`);
      const stats = (await batcherStats(email, batcher))!;
      assert.ok(stats.largestBatch > 1, `${email}'s lookups were never batched: ${JSON.stringify(stats)}`);
    }
    console.log(`# ${path}/{id}: statements per role for ${IDS.length} concurrent lookups each: ${JSON.stringify(Object.fromEntries(calls))}`);
  });
}
