import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { after, before, describe, test } from 'node:test';
import type pg from 'pg';
import { TRIP_BATCH_MAX } from '../../functions/getTrip.ts';
import { KeyBatcher } from '../../lib/db/keyBatcher.ts';
import { type ApiError, ClientClosedRequest } from '../../lib/errors.ts';
import { listenOnLoopback, type RunningHttpServer } from '../support/httpHarness.ts';
import { pollUntil } from '../support/pollUntil.ts';
import { startRestartableTestDatabase, type RestartableTestDatabase } from '../support/restartableDatabase.ts';
import { enableStatementCounting } from '../support/statementCounts.ts';
import { startTestService, type TestService } from '../support/testService.ts';

/**
 * Concurrent GET /trips/{trip_id} share statements (functions/getTrip.ts, lib/db/keyBatcher.ts).
 * Every request must get exactly its own answer or its own error, whatever its neighbours do.
 * The cache is off, so every lookup reaches the database and carries its caller's signal.
 */
const ROWS = 2000;
const POOL_SIZE = 2;
/** Long enough for the lock-holding tests to set up their batch before the statement would time out. */
const COMMAND_TIMEOUT_S = 5;

let db: RestartableTestDatabase;
let service: TestService;
let http: RunningHttpServer;
/** Each trip as the database has it, as JSON text: what GET /trips/{id} must answer, byte for byte. */
let expected: Map<number, string>;

before(async () => {
  db = await startRestartableTestDatabase(ROWS);
  await enableStatementCounting(db);
  service = await startTestService({
    database: db,
    env: {
      DB_POOL_SIZE: String(POOL_SIZE),
      DB_MAX_OVERFLOW: '2',
      DB_POOL_TIMEOUT: '5',
      DB_COMMAND_TIMEOUT: String(COMMAND_TIMEOUT_S),
      CACHE_ENABLED: 'false',
      // This suite puts 300 of one caller's lookups in flight at once to see them batched; the per-caller
      // bound (128) and the fair turns would refuse or queue most of them (test/reliability/fairShares.test.ts).
      CALLER_MAX_IN_FLIGHT: '1000',
      ADMISSION_MAX_ACTIVE: '1000',
    },
  });
  http = await listenOnLoopback(service);
  const { rows } = await db.admin.query<{ id: number; trip: string }>(
    `SELECT t.id::int AS id, row_to_json(t)::text AS trip FROM (SELECT id, vendor_id, pickup_datetime, dropoff_datetime, passenger_count,
       pickup_longitude, pickup_latitude, dropoff_longitude, dropoff_latitude, store_and_fwd_flag, trip_duration FROM nyc_train_synced) AS t`,
  );
  expected = new Map(rows.map((r) => [r.id, r.trip]));
});
after(async () => {
  await http?.close();
  await service?.close();
  await db?.stop();
});

interface Answer {
  status: number;
  text: string;
  /** A 404's problem document (the only body read here; a 200's is compared as text). */
  body: { detail: string };
}

async function lookup(id: number): Promise<Answer> {
  const url = `/trips/${id}`;
  const res = await fetch(`${http.baseUrl}${url}`);
  const text = await res.text();
  const answer = { status: res.status, headers: Object.fromEntries(res.headers), text, body: text ? JSON.parse(text) : undefined };
  service.contract.check('GET', url, answer);
  return answer;
}

/** The request's own answer: its trip byte for byte, or a 404 naming its id. */
function assertOwnAnswer(id: number, answer: Answer): void {
  const trip = expected.get(id);
  if (trip) {
    assert.equal(answer.status, 200, `trip ${id}: ${answer.text}`);
    assert.equal(answer.text, trip, `trip ${id} answered with another row`);
  } else {
    assert.equal(answer.status, 404, `absent trip ${id}: ${answer.text}`);
    assert.equal(answer.body.detail, `Trip ${id} not found`);
  }
}

/** The service's batcher for trip lookups (created by the first lookup). */
function tripBatcher(): KeyBatcher<number, string> {
  return service.ctx.db.batcher<number, string>('trip_by_id', () => {
    throw new Error('no lookup has run yet');
  });
}

/** Calls of the batched lookup statement as pg_stat_statements counts them. */
async function lookupStatementCalls(): Promise<number> {
  const { rows } = await db.admin.query<{ calls: number }>(
    `SELECT coalesce(sum(calls), 0)::int AS calls FROM pg_stat_statements WHERE query LIKE '%id = ANY($1::bigint[])%'`,
  );
  return rows[0]!.calls;
}

/** Service statements waiting for a lock (the table held by a test transaction). */
async function waitingLookups(): Promise<number> {
  const { rows } = await db.admin.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = 'lakebase-api' AND wait_event_type = 'Lock' AND query LIKE '%= ANY%'`,
  );
  return rows[0]!.n;
}

/** Holds ACCESS EXCLUSIVE on the trips table until `release`: every lookup statement waits meanwhile. */
async function lockTable(): Promise<{ client: pg.PoolClient; release(): Promise<void> }> {
  const client = await db.admin.connect();
  client.on('error', () => undefined); // a restart in the middle cuts it
  await client.query('BEGIN');
  await client.query('LOCK TABLE nyc_train_synced IN ACCESS EXCLUSIVE MODE');
  let released = false;
  return {
    client,
    async release() {
      if (released) return;
      released = true;
      await client.query('COMMIT').catch(() => undefined);
      client.release(true);
    },
  };
}

/**
 * Lookups that are all in flight at the same moment. Left to arrival timing, a test process that is
 * also the server may see each request answered before the next one is parsed (then nothing needs
 * gathering, and nothing is); so the table is locked until every lookup has reached the service.
 */
async function allInFlightAtOnce(ids: number[]): Promise<Answer[]> {
  const lock = await lockTable();
  try {
    const before = tripBatcherIfAny()?.stats().lookups ?? 0;
    const pending = ids.map((id) => lookup(id));
    await pollUntil(`${ids.length} lookups in the service`, 10_000, () =>
      (tripBatcherIfAny()?.stats().lookups ?? 0) - before >= ids.length ? true : undefined,
    );
    await lock.release();
    return await Promise.all(pending);
  } finally {
    await lock.release();
  }
}

function tripBatcherIfAny(): KeyBatcher<number, string> | undefined {
  try {
    return tripBatcher();
  } catch {
    return undefined;
  }
}

interface HangingRequest {
  answer: Promise<Answer | 'hung up'>;
  hangUp(): void;
}

/** A lookup on its own connection, so hanging up closes the socket the server sees. */
function startLookup(id: number): HangingRequest {
  let hungUp = false;
  const req = httpRequest({ host: '127.0.0.1', port: http.port, path: `/trips/${id}`, agent: false });
  const answer = new Promise<Answer | 'hung up'>((resolve) => {
    req.on('error', () => resolve('hung up'));
    req.on('response', (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        text += chunk;
      });
      res.on('end', () => resolve(hungUp ? 'hung up' : { status: res.statusCode!, text, body: text ? JSON.parse(text) : undefined }));
    });
  });
  req.end();
  return {
    answer,
    hangUp: () => {
      hungUp = true;
      req.destroy();
    },
  };
}

function statusCount(status: number): number {
  return service.logs.records().filter((r) => r.route === '/trips/{trip_id}' && r.status === status).length;
}

describe('batched point lookups', () => {
  test('300 concurrent lookups, present, absent and repeated ids: each gets its own answer', async () => {
    const ids = Array.from({ length: 300 }, (_, i) => (i % 5 === 0 ? ROWS + 1 + i : i % 7 === 0 ? 42 : 1 + ((i * 7919) % ROWS)));
    const answers = await allInFlightAtOnce(ids);
    ids.forEach((id, i) => {
      assertOwnAnswer(id, answers[i]!);
    });
    const stats = tripBatcher().stats();
    assert.ok(stats.largestBatch > 1, `lookups were never batched: ${JSON.stringify(stats)}`);
    assert.ok(stats.largestBatch <= TRIP_BATCH_MAX, `a batch exceeded its bound: ${JSON.stringify(stats)}`);
  });

  test('the database counts far fewer statements than 100 concurrent lookups, and one for a lone lookup', async () => {
    await db.admin.query('SELECT pg_stat_statements_reset()');
    const ids = Array.from({ length: 100 }, (_, i) => 1 + i * 19);
    const answers = await allInFlightAtOnce(ids);
    ids.forEach((id, i) => {
      assertOwnAnswer(id, answers[i]!);
    });
    const concurrent = await lookupStatementCalls();
    // The two slots' statements, then the 98 gathered lookups in batches of at most 64.
    assert.ok(concurrent >= 1 && concurrent <= 2 + Math.ceil(98 / TRIP_BATCH_MAX), `100 concurrent lookups ran ${concurrent} statements`);

    await db.admin.query('SELECT pg_stat_statements_reset()');
    assertOwnAnswer(777, await lookup(777));
    assert.equal(await lookupStatementCalls(), 1, 'a lone lookup is one statement');
    console.log(`# statements counted by pg_stat_statements: ${concurrent} for 100 concurrent lookups, 1 for a lone one`);
  });

  test('a repeated id is asked once in a statement and answered to each caller', async () => {
    const asked: number[][] = [];
    const batcher = new KeyBatcher<number, string>({
      maxBatch: 8,
      maxInFlight: 1,
      async load(ids) {
        asked.push([...ids]);
        const { rows } = await service.ctx.db.query<{ id: number; trip: string }>({
          text: 'SELECT id, row_to_json(t)::text AS trip FROM nyc_train_synced AS t WHERE id = ANY($1::bigint[])',
          values: [ids],
        });
        return rows.map((r) => [r.id, r.trip] as const);
      },
    });
    // The first goes out alone at once; the rest arrive while it runs and leave together.
    const answers = await Promise.all([7, 5, 5, ROWS + 9, 6, 5, ROWS + 9].map((id) => batcher.get(id)));
    assert.deepEqual(asked, [[7], [5, ROWS + 9, 6]]);
    assert.deepEqual(
      answers.map((a) => (a === undefined ? undefined : JSON.parse(a).id)),
      [7, 5, 5, undefined, 6, 5, undefined],
    );
  });

  test("a batch that fails on one key's row: each key is run alone, only that caller gets the error", async () => {
    // Division by zero for key 0 only: a failure that belongs to one row, not to the database.
    const asked: number[][] = [];
    const batcher = new KeyBatcher<number, number>({
      maxBatch: 8,
      maxInFlight: 1,
      async load(keys) {
        asked.push([...keys]);
        const { rows } = await service.ctx.db.query<{ k: number; v: number }>({ text: 'SELECT k, 100 / k AS v FROM unnest($1::int[]) AS k', values: [keys] });
        return rows.map((r) => [r.k, r.v] as const);
      },
    });
    const outcomes = await Promise.allSettled([1, 4, 0, 5, 0].map((k) => batcher.get(k)));
    assert.deepEqual(
      outcomes.map((o) => (o.status === 'fulfilled' ? o.value : (o.reason as ApiError).status)),
      [100, 25, 500, 20, 500],
    );
    assert.deepEqual(asked, [[1], [4, 0, 5], [4], [0], [5]]);
  });

  test('a locked row does not hold up the batch: readers see the last committed trip', async () => {
    // A reader never waits for a row lock in PostgreSQL (MVCC): an uncommitted update of trip 10,
    // held longer than the statement timeout, neither delays nor times out the lookups around it.
    const writer = await db.admin.connect();
    try {
      await writer.query('BEGIN');
      await writer.query(`UPDATE nyc_train_synced SET vendor_id = 'locked' WHERE id = 10`);
      await writer.query('SELECT 1 FROM nyc_train_synced WHERE id = 11 FOR UPDATE');
      const started = Date.now();
      const ids = [9, 10, 11, 12, 10, ROWS + 3, 13, 14];
      const answers = await Promise.all(ids.map((id) => lookup(id)));
      ids.forEach((id, i) => {
        assertOwnAnswer(id, answers[i]!);
      });
      assert.ok(Date.now() - started < COMMAND_TIMEOUT_S * 1000, 'lookups waited for the row lock');
    } finally {
      await writer.query('ROLLBACK');
      writer.release();
    }
  });

  test('a table locked past the statement timeout: every request in the batch gets its own 504, later lookups are served', async () => {
    const lock = await lockTable();
    let answers: Answer[];
    try {
      answers = await Promise.all([20, 21, 22, ROWS + 5, 23].map((id) => lookup(id)));
    } finally {
      await lock.release();
    }
    for (const answer of answers) {
      assert.equal(answer.status, 504, answer.text);
      assert.match(answer.body.detail, /timeout/);
    }
    for (const id of [20, 21, 22, ROWS + 5, 23]) assertOwnAnswer(id, await lookup(id));
  });

  test('a caller that hangs up mid-batch gets 499; its neighbours in the same statement get their trips', async () => {
    const lock = await lockTable();
    const before499 = statusCount(499);
    try {
      // Two lookups take both statement slots and wait for the lock; three more queue behind them.
      const blockers = [startLookup(30), startLookup(31)];
      await pollUntil('two lookups waiting for the lock', 5000, async () => ((await waitingLookups()) === 2 ? true : undefined));
      const { statements: batchBefore, lookups: lookupsBefore } = tripBatcher().stats();
      const [a, b, c] = [startLookup(32), startLookup(33), startLookup(34)];
      await pollUntil('three queued lookups', 5000, () => (tripBatcher().stats().lookups - lookupsBefore >= 3 ? true : undefined));
      // The blockers' callers leave: alone in their statements, those are cancelled, and the three
      // queued lookups go out together in one statement, which waits for the lock in turn.
      for (const blocker of blockers) blocker.hangUp();
      await pollUntil('one statement for the three queued lookups', 5000, async () =>
        tripBatcher().stats().statements === batchBefore + 1 && (await waitingLookups()) === 1 ? true : undefined,
      );
      assert.equal(tripBatcher().stats().largestBatch >= 3, true);
      b.hangUp();
      await pollUntil('the 499s of the three callers that left', 5000, () => (statusCount(499) - before499 === 3 ? true : undefined));
      // The shared statement still waits for its remaining callers.
      assert.equal(await waitingLookups(), 1);
      await lock.release();
      for (const [id, req] of [
        [32, a],
        [34, c],
      ] as const) {
        const answer = await req.answer;
        assert.notEqual(answer, 'hung up');
        assertOwnAnswer(id, answer as Answer);
      }
      assert.equal(await b.answer, 'hung up');
    } finally {
      await lock.release();
    }
  });

  test('the database restarts mid-batch: each waiting request gets its own 503, then lookups are served again', async () => {
    const lock = await lockTable();
    const ids = [40, 41, 42, 43, ROWS + 7, 44];
    const lookupsBefore = tripBatcher().stats().lookups;
    const pending = ids.map((id) => lookup(id));
    await pollUntil('lookups waiting for the lock', 5000, async () => ((await waitingLookups()) === POOL_SIZE ? true : undefined));
    await pollUntil('the rest queued', 5000, () => (tripBatcher().stats().lookups - lookupsBefore >= ids.length ? true : undefined));
    await db.stopServer();
    const answers = await Promise.all(pending);
    for (const answer of answers) {
      assert.equal(answer.status, 503, answer.text);
      assert.match(answer.body.detail, /unavailable|lost|retry/i);
    }
    await lock.release();
    await db.startServer();
    const after = await pollUntil('lookups served again', 15_000, async () => {
      const answer = await lookup(45);
      return answer.status === 200 ? answer : undefined;
    });
    assertOwnAnswer(45, after);
    const again = await Promise.all(ids.map((id) => lookup(id)));
    ids.forEach((id, i) => {
      assertOwnAnswer(id, again[i]!);
    });
  });
});

describe('KeyBatcher', () => {
  test('a caller that left before its statement went out is answered at once and not asked for', async () => {
    const asked: number[][] = [];
    let finishFirst!: () => void;
    const batcher = new KeyBatcher<number, number>({
      maxBatch: 4,
      maxInFlight: 1,
      async load(keys) {
        asked.push([...keys]);
        if (asked.length === 1)
          await new Promise<void>((resolve) => {
            finishFirst = resolve;
          });
        return keys.map((k) => [k, k * 2] as const);
      },
    });
    const first = batcher.get(1);
    const leaving = new AbortController();
    const left = batcher.get(2, leaving.signal);
    const stays = batcher.get(3);
    leaving.abort();
    await assert.rejects(left, ClientClosedRequest);
    finishFirst();
    assert.deepEqual(await Promise.all([first, stays]), [2, 6]);
    assert.deepEqual(asked, [[1], [3]]);
  });
});
