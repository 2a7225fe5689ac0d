import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Database } from '../../lib/db/database.ts';
import { ScanShare } from '../../lib/db/scanShare.ts';
import { shapeKey, StatementCosts } from '../../lib/db/statementCosts.ts';
import { Overloaded } from '../../lib/errors.ts';
import { startTestDatabase, type TestDatabase } from '../support/testService.ts';

/**
 * Which scanning statements take the share (issue 26): the planner's estimate, asked once per
 * statement shape, against a real Postgres.
 */

const TRIPS = 'public.nyc_train_synced';
const keysetPage = (after: number) => ({ text: `SELECT id FROM ${TRIPS} WHERE id > $1 ORDER BY id LIMIT $2`, values: [after, 10] });
const count = { text: `SELECT count(*) FROM ${TRIPS}` };
/** A heavy statement that holds its connection for a while: the count, after a sleep. */
const slowCount = (seconds: number) => ({ text: `SELECT pg_sleep($1::float8), count(*) FROM ${TRIPS}`, values: [seconds] });

let database: TestDatabase;
let db: Database;
before(async () => {
  database = await startTestDatabase(20_000);
  db = new Database(database.admin);
});
after(async () => {
  await database?.stop();
});

async function estimate(statement: { text: string; values?: unknown[] }): Promise<number> {
  return (await db.plan(statement)).totalCost;
}

describe('statement shapes', () => {
  test("a shape is the text and each number's order of magnitude; other values do not count", () => {
    const text = 'SELECT 1 WHERE $1::int > 0';
    assert.equal(shapeKey({ text, values: [4] }), shapeKey({ text, values: [5] }), 'same power of two');
    assert.equal(shapeKey({ text, values: ['4'] }), shapeKey({ text, values: [5] }), 'numbers pg gets as text count as numbers');
    assert.notEqual(shapeKey({ text, values: [10] }), shapeKey({ text, values: [900_000] }), 'an OFFSET of 10 against one of 900,000');
    assert.equal(shapeKey({ text, values: ['2024-01-01'] }), shapeKey({ text, values: ['alice'] }));
    assert.notEqual(shapeKey({ text, values: [1] }), shapeKey({ text: 'SELECT 2 WHERE $1::int > 0', values: [1] }));
  });
});

describe('the planner tells heavy statements from light ones', () => {
  test('a count of the table is heavy, a keyset page light; each shape is planned once, and concurrent askers share the plan', async () => {
    const [light, heavy] = [await estimate(keysetPage(100)), await estimate(count)];
    assert.ok(heavy > 10 * light, `count ${heavy} against keyset page ${light}`);
    const costs = new StatementCosts({ heavyFrom: Math.sqrt(light * heavy) });
    let explains = 0;
    const explain = async (statement: { text: string; values?: unknown[] }) => {
      explains++;
      return estimate(statement);
    };
    const answers = await Promise.all([100, 101, 102, 103].map((after) => costs.isHeavy(keysetPage(after), explain)));
    assert.deepEqual(answers, [false, false, false, false]);
    assert.equal(explains, 1, 'one EXPLAIN for four pages of one shape and magnitude');
    assert.equal(await costs.isHeavy(count, explain), true);
    assert.equal(await costs.isHeavy(keysetPage(15_000), explain), false, 'another magnitude: planned again, light again');
    assert.deepEqual(costs.stats(), { explained: 3, remembered: 3 });
    // A statement the planner refuses is not remembered, and counts as heavy: running it reports the error.
    const bad = { text: `SELECT id FROM ${TRIPS} WHERE id > $1::int`, values: ['not a number'] };
    assert.equal(await costs.isHeavy(bad, explain), true);
    assert.equal(costs.stats().remembered, 3);
  });
});

describe("a scanning read's handle", () => {
  test('heavy statements take the share in turn and are shed past the wait; light ones run beside it; a transaction holds its slot to its end', async () => {
    const heavyFrom = Math.sqrt((await estimate(keysetPage(1))) * (await estimate(count)));
    const share = new ScanShare({ slots: 1, waitMs: 100, costs: new StatementCosts({ heavyFrom }) });
    const flooder = db.forScan(share, 'flooder');
    const neighbour = db.forScan(share, 'neighbour');

    const holding = flooder.query(slowCount(0.6));
    // Let the held statement be planned and take the slot.
    for (let tries = 0; share.stats().inUse === 0 && tries < 100; tries++) await new Promise((resolve) => setTimeout(resolve, 10));
    assert.equal(share.stats().inUse, 1);
    const started = performance.now();
    const page = await neighbour.query<{ id: number }>(keysetPage(5));
    assert.equal(page.rows.length, 10);
    assert.ok(performance.now() - started < 500, 'the light page did not wait for the heavy count');
    await assert.rejects(neighbour.query(count), (err: unknown) => err instanceof Overloaded && err.limit === 'scan-share');
    await holding;
    const { inUse, waiting, shed, light, heavy } = share.stats();
    assert.deepEqual({ inUse, waiting, shed, light, heavy }, { inUse: 0, waiting: 0, shed: 1, light: 1, heavy: 2 });

    // A transaction (a streamed read) named by a heavy statement holds the slot until its work ends.
    let finish!: () => void;
    const streaming = flooder.transaction(
      async (client) => {
        await client.query(count);
        await new Promise<void>((resolve) => (finish = resolve));
      },
      [count],
    );
    for (let tries = 0; finish === undefined && tries < 100; tries++) await new Promise((resolve) => setTimeout(resolve, 10));
    assert.equal(share.stats().inUse, 1, 'held while the body is still being read');
    await assert.rejects(neighbour.query(count), (err: unknown) => err instanceof Overloaded);
    finish();
    await streaming;
    assert.equal(share.stats().inUse, 0);
    // With nothing named, a transaction is heavy; named only by light statements, it runs beside the share.
    const held = flooder.query(slowCount(0.3));
    for (let tries = 0; share.stats().inUse === 0 && tries < 100; tries++) await new Promise((resolve) => setTimeout(resolve, 10));
    await assert.rejects(
      neighbour.transaction(async () => undefined),
      (err: unknown) => err instanceof Overloaded,
    );
    assert.equal(await neighbour.transaction(async () => 'ran', [keysetPage(7)]), 'ran');
    await held;
  });

  test('light statements have a share of their own, so point lookups and writes keep connections', async () => {
    const heavyFrom = Math.sqrt((await estimate(keysetPage(1))) * (await estimate(count)));
    const share = new ScanShare({ slots: 1, lightSlots: 1, waitMs: 100, costs: new StatementCosts({ heavyFrom }) });
    const scan = db.forScan(share, 'a');
    // A light statement that sleeps: the keyset page, behind a sleep that does not change its estimate much.
    const slowPage = { text: `SELECT id, pg_sleep($3::float8) FROM ${TRIPS} WHERE id > $1 ORDER BY id LIMIT $2`, values: [1, 1, 0.5] };
    const held = scan.query(slowPage);
    for (let tries = 0; share.stats().lightInUse === 0 && tries < 100; tries++) await new Promise((resolve) => setTimeout(resolve, 10));
    assert.equal(share.stats().lightInUse, 1);
    await assert.rejects(db.forScan(share, 'b').query(keysetPage(3)), (err: unknown) => err instanceof Overloaded && err.limit === 'scan-share');
    assert.equal((await db.query({ text: `SELECT id FROM ${TRIPS} WHERE id = $1`, values: [3] })).rows.length, 1, 'a point lookup is not held back');
    await held;
    assert.equal(share.stats().lightInUse, 0);
  });

  test('without a cost bound (DB_SCAN_COST=0) every scanning statement takes the share', async () => {
    const share = new ScanShare({ slots: 1, waitMs: 100 });
    await db.forScan(share, 'a').query(keysetPage(1));
    assert.equal(share.stats().heavy, 1);
    assert.equal(share.stats().light, 0);
  });
});
