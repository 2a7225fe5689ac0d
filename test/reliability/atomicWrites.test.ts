import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type pg from 'pg';
import { reportFigures } from '../support/figures.ts';
import { listenOnLoopback, type RunningHttpServer } from '../support/httpHarness.ts';
import { runLoad, type LoadRequest } from '../support/loadClient.ts';
import { watchProcessFaults } from '../support/processFaults.ts';
import { credentialsToSend, SecretScanner } from '../support/secretScan.ts';
import { startTestDatabase, startTestService, type TestDatabase, type TestService } from '../support/testService.ts';

/**
 * Concurrent vendor updates, to the same trips and to different ones, while reads run, statements
 * time out behind a held row lock, injected failures abort updates half-way, and the service's
 * connections are killed mid-statement. An audit trigger records every update in the updating
 * transaction itself, so the audit log is exactly the set of committed writes, in commit order per
 * trip. Then: every acknowledged write is in it, no write answered with an error is, each trip ends
 * at its last committed value, no other column moved, and no response ever showed a torn trip.
 */
const ROWS = 2000;
const HOT_TRIPS = [1, 2, 3];
const HOT_WRITERS = 8;
const SPREAD_WRITERS = 4;
const SPREAD_TRIPS_EACH = 40;
const READERS = 4;
const LOAD_MS = 8000;
const COMMAND_TIMEOUT_S = 1;

let database: TestDatabase;
let service: TestService;
let http: RunningHttpServer;
const faults = watchProcessFaults();
const sent = credentialsToSend();

before(async () => {
  database = await startTestDatabase(ROWS);
  // The audit row is written before the injected failure, so a failed update must roll both back.
  await database.admin.query(`
    CREATE TABLE vendor_audit (seq bigserial PRIMARY KEY, trip_id bigint NOT NULL, vendor_id text NOT NULL);
    CREATE FUNCTION audit_vendor() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      INSERT INTO vendor_audit (trip_id, vendor_id) VALUES (NEW.id, NEW.vendor_id);
      IF NEW.vendor_id LIKE 'boom%' THEN RAISE EXCEPTION 'injected failure after the row changed'; END IF;
      IF NEW.vendor_id LIKE 'slow%' THEN PERFORM pg_sleep(30); END IF;
      RETURN NEW;
    END $$;
    CREATE TRIGGER audit_vendor AFTER UPDATE OF vendor_id ON nyc_train_synced FOR EACH ROW EXECUTE FUNCTION audit_vendor();
  `);
  service = await startTestService({
    database,
    env: { DB_POOL_SIZE: '4', DB_MAX_OVERFLOW: '6', DB_POOL_TIMEOUT: '5', DB_COMMAND_TIMEOUT: String(COMMAND_TIMEOUT_S) },
  });
  http = await listenOnLoopback(service);
});
after(async () => {
  await http?.close();
  await service?.close();
  await database?.stop();
  faults.stop();
});

/** Everything but vendor_id, which is the only column a write may change. */
const OTHER_COLUMNS = `id, pickup_datetime, dropoff_datetime, passenger_count, pickup_longitude, pickup_latitude,
  dropoff_longitude, dropoff_latitude, store_and_fwd_flag, trip_duration`;

async function otherColumnsChecksum(admin: pg.Pool): Promise<string> {
  const { rows } = await admin.query<{ sum: string }>(`SELECT md5(string_agg((${OTHER_COLUMNS})::text, ',' ORDER BY id)) AS sum FROM nyc_train_synced`);
  return rows[0]!.sum;
}

interface WriteOutcome {
  trip: number;
  vendor: string;
  status: number;
  error?: string;
  body?: Record<string, unknown>;
}

test('concurrent vendor updates under load and faults: every acknowledged write present, errored writes left nothing, no torn state', async () => {
  const scanner = new SecretScanner({ ...sent.secrets, 'database password': database.server.password });
  const { admin } = database;
  const checksumBefore = await otherColumnsChecksum(admin);
  const spreadTrips = (w: number) => Array.from({ length: SPREAD_TRIPS_EACH }, (_, i) => 100 + w * SPREAD_TRIPS_EACH + i);
  const touched = [...HOT_TRIPS, ...Array.from({ length: SPREAD_WRITERS }, (_, w) => spreadTrips(w)).flat()];
  const original = new Map<number, Record<string, unknown>>();
  for (const trip of touched) original.set(trip, (await service.api.get(`/trips/${trip}`)).body);

  const writes: WriteOutcome[] = [];
  const tornReads: string[] = [];
  let reads = 0;
  const committable = new Set<string>(); // values of the writes that may commit (not the injected failures)
  const started = performance.now();
  const stop = () => performance.now() - started > LOAD_MS;

  // Faults, injected while the load runs: a row lock held on the hot trips past the command
  // timeout, and the service's busy connections killed mid-statement.
  const injections = (async () => {
    await new Promise((resolve) => setTimeout(resolve, 2000));
    const locker = await admin.connect();
    try {
      await locker.query('BEGIN');
      await locker.query('SELECT id FROM nyc_train_synced WHERE id = ANY($1) FOR UPDATE', [HOT_TRIPS]);
      await new Promise((resolve) => setTimeout(resolve, 2500));
      await locker.query('COMMIT');
    } finally {
      locker.release();
    }
    let killed = 0;
    while (!stop()) {
      const { rows } = await admin.query<{ n: number }>(`
        SELECT count(pg_terminate_backend(pid))::int AS n FROM (
          SELECT pid FROM pg_stat_activity WHERE application_name = 'lakebase-api' AND state = 'active'
          ORDER BY random() LIMIT 1) AS victim`);
      killed += rows[0]!.n;
      await new Promise((resolve) => setTimeout(resolve, 300));
    }
    return killed;
  })();

  const next = (worker: number, seq: number): LoadRequest | undefined => {
    if (worker < HOT_WRITERS + SPREAD_WRITERS) {
      const trip = worker < HOT_WRITERS ? HOT_TRIPS[seq % HOT_TRIPS.length]! : spreadTrips(worker - HOT_WRITERS)[seq % SPREAD_TRIPS_EACH]!;
      // Unique per write, so the audit log tells exactly which writes committed.
      const kind = seq % 23 === 7 ? 'boom' : seq % 29 === 11 ? 'slow' : 'w';
      const vendor = `${kind}${worker}x${seq}`;
      if (kind === 'w') committable.add(vendor);
      return {
        method: 'POST',
        path: `/trips/${trip}/vendor`,
        tag: `write:${trip}:${vendor}`,
        headers: { ...sent.headers, 'content-type': 'application/json' },
        body: JSON.stringify({ vendor_id: vendor }),
      };
    }
    const trip = touched[(worker * 31 + seq * 17) % touched.length]!;
    return { method: 'GET', path: `/trips/${trip}`, tag: `read:${trip}`, headers: { ...sent.headers, ...(seq % 2 ? { 'cache-control': 'no-cache' } : {}) } };
  };

  const stats = await runLoad({
    baseUrl: http.baseUrl,
    workers: HOT_WRITERS + SPREAD_WRITERS + READERS,
    next,
    stop,
    timeoutMs: 10_000,
    onOutcome: (o) => {
      scanner.scanResponse(`${o.request.method} ${o.request.path}`, o.headers, o.text);
      const [kind, tripText, vendor] = o.request.tag!.split(':');
      const trip = Number(tripText);
      const body = o.status === 200 ? (JSON.parse(o.text) as Record<string, unknown>) : undefined;
      if (kind === 'write') {
        writes.push({ trip, vendor: vendor!, status: o.status, error: o.error, body });
      } else if (body) {
        reads++;
        const { vendor_id: readVendor, ...rest } = body;
        const { vendor_id: originalVendor, ...originalRest } = original.get(trip)!;
        if (JSON.stringify(rest) !== JSON.stringify(originalRest) || (readVendor !== originalVendor && !committable.has(String(readVendor)))) {
          tornReads.push(`${o.request.path}: ${o.text.slice(0, 200)}`);
        }
      }
    },
  });
  const killed = await injections;

  // The committed writes, in commit order per trip (a row lock serialises updates of one trip).
  const { rows: audit } = await admin.query<{ trip_id: number; vendor_id: string }>('SELECT trip_id::int, vendor_id FROM vendor_audit ORDER BY seq');
  const committed = new Set(audit.map((a) => a.vendor_id));
  const duplicates = audit.length - committed.size;
  const lastCommitted = new Map<number, string>();
  for (const a of audit) lastCommitted.set(a.trip_id, a.vendor_id);
  const { rows: finalRows } = await admin.query<{ id: number; vendor_id: string }>('SELECT id::int, vendor_id FROM nyc_train_synced WHERE id = ANY($1)', [
    touched,
  ]);
  const checksumAfter = await otherColumnsChecksum(admin);

  const acknowledged = writes.filter((w) => w.status === 200);
  const lostAcks = acknowledged.filter((w) => !committed.has(w.vendor));
  const tornResponses = acknowledged.filter((w) => {
    const { vendor_id: vendor, ...rest } = w.body!;
    const { vendor_id: _v, ...originalRest } = original.get(w.trip)!;
    return vendor !== w.vendor || JSON.stringify(rest) !== JSON.stringify(originalRest);
  });
  // Answered with an error the service knows to be final: the statement failed or was cancelled.
  const failed = writes.filter((w) => w.status === 500 || w.status === 504 || (w.status >= 400 && w.status < 500));
  const leftovers = failed.filter((w) => committed.has(w.vendor));
  // Answered 503 because the connection died: the commit may or may not have happened first.
  const ambiguous = writes.filter((w) => w.status === 503 || w.error);
  const ambiguousCommitted = ambiguous.filter((w) => committed.has(w.vendor));
  const notAnswered = [...committed].filter((v) => !writes.some((w) => w.vendor === v));
  const wrongFinal = finalRows.filter((r) => r.vendor_id !== (lastCommitted.get(r.id) ?? original.get(r.id)!.vendor_id));
  const unexpectedStatuses = writes.filter((w) => ![200, 500, 503, 504].includes(w.status) || (w.status === 500 && !w.vendor.startsWith('boom')));

  // Reads through the API after the load agree with the database (the cache was invalidated by every write).
  const staleAfter: string[] = [];
  for (const r of finalRows) {
    const res = await service.api.get(`/trips/${r.id}`);
    if (res.body?.vendor_id !== r.vendor_id) staleAfter.push(`${r.id}: api ${res.body?.vendor_id} db ${r.vendor_id}`);
  }
  for (const line of service.logs.lines) scanner.scan('log', line);

  reportFigures('atomic writes under load and faults', {
    requests: stats.sent,
    writes: writes.length,
    acknowledged: acknowledged.length,
    injected_failures_500: writes.filter((w) => w.status === 500).length,
    statement_timeouts_504: writes.filter((w) => w.status === 504).length,
    connection_lost_503: ambiguous.length,
    connections_killed: killed,
    reads,
    committed: audit.length,
    lost_acknowledged_writes: lostAcks.length,
    torn_responses: tornResponses.length,
    torn_reads: tornReads.length,
    errored_writes_left_behind: leftovers.length,
    ambiguous_503_that_committed: ambiguousCommitted.length,
    trips_not_at_last_commit: wrongFinal.length,
    other_columns_changed: checksumAfter !== checksumBefore,
    stale_reads_after: staleAfter.length,
    secret_hits: scanner.hits.length,
  });

  assert.deepEqual(faults.faults, []);
  assert.deepEqual(
    unexpectedStatuses.map((w) => `${w.vendor} → ${w.status} ${w.error ?? ''}`),
    [],
    'writes end in 200, an injected 500, a 504 or a 503',
  );
  assert.ok(acknowledged.length > 100, `enough writes succeeded (${acknowledged.length})`);
  assert.ok(writes.some((w) => w.status === 500) && writes.some((w) => w.status === 504), 'the injected failures and timeouts happened');
  assert.deepEqual(
    lostAcks.map((w) => w.vendor),
    [],
    'every acknowledged write committed',
  );
  assert.equal(duplicates, 0, 'no write committed twice');
  assert.deepEqual(
    leftovers.map((w) => `${w.vendor} → ${w.status}`),
    [],
    'a write answered with an error left nothing behind',
  );
  assert.deepEqual(notAnswered, [], 'every committed value came from a write this test sent and saw answered');
  assert.deepEqual(
    tornResponses.map((w) => w.vendor),
    [],
    'each acknowledged write returned the trip as written, other columns untouched',
  );
  assert.deepEqual(tornReads, [], 'no read showed a half-written trip or a value nobody wrote');
  assert.deepEqual(wrongFinal, [], 'each trip ends at its last committed write');
  assert.equal(checksumAfter, checksumBefore, 'no other column changed anywhere in the table');
  assert.deepEqual(staleAfter, [], 'reads through the API after the load see the final values');
  assert.deepEqual(scanner.hits, []);
});
