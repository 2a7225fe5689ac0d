import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { loadConfig } from '../../lib/ground/config.ts';
import type { Context } from '../../lib/http/serviceContext.ts';
import { openContext } from '../../lib/openContext.ts';
import type { ReadRoutingStats } from '../../lib/replicas/readRouting.ts';
import type { ApiClient } from '../support/api.ts';
import { captureLogs } from '../support/logCapture.ts';
import { pollUntil } from '../support/pollUntil.ts';
import { STANDBY_HOST, startReplicatedDatabase, type ReplicatedDatabase } from '../support/streamingReplica.ts';
import { serveContext } from '../support/testService.ts';

/** The reads the OpenAPI document sends to the replica, and the statements each runs. */
const SCANNING_READS = ['/trips/count', '/trips/analytics', '/trips/pages?page=2&page_size=50', '/trips/stream?cursor=100&page_size=50', '/trips/sample'];
const REPLICA_STATEMENTS = ['trip_count', 'trip_analytics', 'trip_page_json', 'trip_stream_json', 'trip_sample'];
const PRIMARY_STATEMENTS = ['trips_by_ids_json', 'trip_update_vendor'];
const MAX_LAG_SECONDS = 1;
const SERVICE_ROLE = 'lakebase_app';
// Loopback only.
const SERVICE_PASSWORD = 'lakebase-app-local-only';

describe('read replicas: a real streaming standby of the embedded PostgreSQL', () => {
  let replicated: ReplicatedDatabase;
  let ctx: Context;
  let api: ApiClient;
  const statuses: number[] = [];

  const routing = () => ctx.readRouting!;
  const stats = (): ReadRoutingStats => routing().stats();
  /** Every response of the suite is kept: the closing test counts the 5xx. */
  const get = async (url: string) => {
    const res = await api.get(url);
    statuses.push(res.status);
    return res;
  };
  const replicaState = async () => (await get('/health/ready')).body.checks.replica;
  const waitForState = (state: string, deadlineMs = 15_000) =>
    pollUntil(`the replica to be ${state}`, deadlineMs, async () => ((await replicaState()).state === state ? true : undefined));

  before(async () => {
    replicated = await startReplicatedDatabase({ rows: 2000 });
    const { primary } = replicated;
    // The service logs in as a role of its own (created on the primary, replicated to the standby),
    // so the standby can refuse it while the suite's superuser keeps checking.
    await replicated.admin.query(`CREATE ROLE ${SERVICE_ROLE} LOGIN PASSWORD '${SERVICE_PASSWORD}' IN ROLE pg_read_all_data, pg_write_all_data`);
    const env = {
      PGHOST: primary.host,
      PGPORT: String(primary.port),
      PGUSER: SERVICE_ROLE,
      PGPASSWORD: SERVICE_PASSWORD,
      PGDATABASE: primary.database,
      PGHOST_READ: STANDBY_HOST,
      DB_POOL_SIZE: '2',
      DB_MAX_OVERFLOW: '4',
      DB_READ_POOL_TIMEOUT: '1',
      DB_READ_CHECK_SECONDS: '0.1',
      DB_READ_MAX_LAG_SECONDS: String(MAX_LAG_SECONDS),
      // Every read runs its statements, so they can be counted per server.
      CACHE_ENABLED: 'false',
    };
    ctx = await openContext(loadConfig(env), env, captureLogs().logger);
    ({ api } = serveContext(ctx));
  });

  after(async () => {
    await ctx?.close();
    await replicated?.stop();
  });

  test('PGHOST_READ configures the replica; readiness reports it without depending on it', async () => {
    assert.ok(ctx.readRouting, 'a replica pool is open');
    assert.equal(ctx.target.replica?.host, STANDBY_HOST);
    await waitForState('up');
    const ready = await get('/health/ready');
    assert.equal(ready.status, 200);
    assert.equal(ready.body.checks.replica.status, 'up');
    assert.equal(ready.body.checks.replica.max_lag_seconds, MAX_LAG_SECONDS);
    const metrics = (await ctx.metrics!.exposition()).body;
    assert.match(metrics, /^lakebase_api_db_replica_lag_seconds \d/m);
    assert.match(metrics, /^lakebase_api_db_replica_up 1$/m);
    assert.match(metrics, /^lakebase_api_db_replica_reads_total\{server="replica",reason="replica"\} \d/m);
  });

  test('scanning reads run on the replica; the point lookup and the write on the primary', async () => {
    await waitForState('up');
    const mark = replicated.statements.mark();
    const rounds = 3;
    for (let round = 0; round < rounds; round++) {
      for (const url of SCANNING_READS) assert.equal((await get(url)).status, 200, url);
    }
    assert.equal((await get('/trips/5')).status, 200);
    const write = await api.post('/trips/7/vendor', { vendor_id: 'split' });
    statuses.push(write.status);
    assert.equal(write.status, 200);

    const counts = await pollUntil("every statement in the servers' logs", 10_000, () => {
      const seen = replicated.statements.since(mark);
      const done = REPLICA_STATEMENTS.every((name) => (seen.standby[name] ?? 0) >= rounds) && PRIMARY_STATEMENTS.every((name) => seen.primary[name] === 1);
      return done ? seen : undefined;
    });
    for (const name of REPLICA_STATEMENTS) {
      assert.equal(counts.primary[name] ?? 0, 0, `${name} never runs on the primary`);
    }
    // /trips/pages counts the trips too: 3 from /trips/count, 3 from the pages.
    assert.equal(counts.standby.trip_count, 2 * rounds);
    for (const name of PRIMARY_STATEMENTS) assert.equal(counts.standby[name] ?? 0, 0, `${name} never runs on the replica`);
    // The write's fence: its WAL position, read on the primary.
    assert.equal(counts.primary.write_fence_lsn, 1);
  });

  test("read-your-writes: with replay delayed, a write's stale reads go to the primary until the replica has it", async () => {
    await waitForState('up');
    // Under the lag bound, so the replica keeps serving every read the write did not touch.
    await replicated.standby.setApplyDelay(600);
    try {
      const tripId = 1234;
      const page = Math.ceil(tripId / 100);
      for (const vendor of ['ryw-a', 'ryw-b', 'ryw-c']) {
        const before = stats();
        const write = await api.post(`/trips/${tripId}/vendor`, { vendor_id: vendor });
        statuses.push(write.status);
        assert.equal(write.status, 200);
        // The replica does not have the write yet...
        const {
          rows: [onReplica],
        } = await replicated.standby.admin.query<{ vendor_id: string }>('SELECT vendor_id FROM nyc_train_synced WHERE id = $1', [tripId]);
        assert.notEqual(onReplica!.vendor_id, vendor, 'replay is delayed');
        // ...but its writer never sees it missing.
        const streamed = await get(`/trips/stream?cursor=${tripId - 1}&page_size=1`);
        assert.equal(streamed.body.trips[0].vendor_id, vendor);
        const paged = await get(`/trips/pages?page=${page}&page_size=100&include_count=false`);
        assert.equal(paged.body.trips.find((t: { id: number }) => t.id === tripId).vendor_id, vendor);
        // A read the write did not make stale (the count) stays on the replica.
        await get('/trips/count');
        const after = stats();
        assert.equal(after.primaryReads.fresh - before.primaryReads.fresh, 2, 'the two stale reads ran on the primary');
        assert.equal(after.replicaReads - before.replicaReads, 1, 'the count ran on the replica');
        assert.ok(after.replayChecks > before.replayChecks, 'the replica was asked for its position first');
      }
      // Lag is visible while replay waits.
      await pollUntil('the readiness to show the lag', 5000, async () => {
        await api.post(`/trips/${tripId}/vendor`, { vendor_id: 'ryw-lag' }).then((r) => statuses.push(r.status));
        const lag = (await replicaState()).lag_seconds;
        return lag !== null && lag >= 0.3 ? lag : undefined;
      });
      // Once the replica has replayed the write, the same reads return to it.
      await pollUntil('the write to reach the replica', 10_000, async () => {
        const {
          rows: [row],
        } = await replicated.standby.admin.query<{ vendor_id: string }>('SELECT vendor_id FROM nyc_train_synced WHERE id = $1', [tripId]);
        return row!.vendor_id === 'ryw-lag' ? true : undefined;
      });
      await pollUntil('the stale read to return to the replica', 10_000, async () => {
        const before = stats().replicaReads;
        const streamed = await get(`/trips/stream?cursor=${tripId - 1}&page_size=1`);
        assert.equal(streamed.body.trips[0].vendor_id, 'ryw-lag');
        return stats().replicaReads > before ? true : undefined;
      });
    } finally {
      await replicated.standby.setApplyDelay(0);
    }
  });

  test(`a replica lagging past DB_READ_MAX_LAG_SECONDS (${MAX_LAG_SECONDS} s) serves no reads until it catches up`, async () => {
    await waitForState('up');
    await replicated.standby.setApplyDelay(2500);
    try {
      const write = await api.post('/trips/99/vendor', { vendor_id: 'lagging' });
      statuses.push(write.status);
      await waitForState('lagging', 10_000);
      const before = stats().primaryReads.lagging;
      for (const url of SCANNING_READS) assert.equal((await get(url)).status, 200, url);
      assert.equal(stats().primaryReads.lagging - before, SCANNING_READS.length);
      assert.match((await replicaState()).last_error, /exceeds DB_READ_MAX_LAG_SECONDS/);
      await waitForState('up', 15_000);
      const replicaBefore = stats().replicaReads;
      assert.equal((await get('/trips/count')).status, 200);
      assert.equal(stats().replicaReads - replicaBefore, 1);
    } finally {
      await replicated.standby.setApplyDelay(0);
    }
  });

  /** Reads in a loop from `workers` callers until stopped; every status is recorded. */
  function readLoad(workers = 2) {
    let running = true;
    let count = 0;
    const loops = Array.from({ length: workers }, async (_, worker) => {
      for (let i = worker; running; i++) {
        await get(SCANNING_READS[i % SCANNING_READS.length]!);
        count++;
      }
    });
    return {
      count: () => count,
      async stop() {
        running = false;
        await Promise.all(loops);
      },
    };
  }

  /**
   * A replica fault under steady read load: `induce` it, see the replica marked down and reads keep
   * being answered, `repair` it, see reads back on the replica. Returns the figures, having checked
   * that every response was a 200.
   */
  async function faultUnderLoad(what: string, induce: () => Promise<void>, repair: () => Promise<void>, downBecause = /./) {
    await waitForState('up');
    const before = stats();
    const from = statuses.length;
    const load = readLoad();
    try {
      await pollUntil('reads on the replica', 5000, () => (stats().replicaReads > before.replicaReads + 10 ? true : undefined));
      await induce();
      await waitForState('down');
      // The sessions the fault ended report first (57P01); the checks then report the fault itself.
      await pollUntil(`readiness to say why: ${downBecause}`, 10_000, async () =>
        downBecause.test((await replicaState()).last_error ?? '') ? true : undefined,
      );
      const downAt = load.count();
      await pollUntil(`reads answered while ${what}`, 10_000, () => (load.count() > downAt + 30 ? true : undefined));
      await repair();
      await waitForState('up');
      const upAgain = stats().replicaReads;
      await pollUntil('reads back on the replica', 10_000, () => (stats().replicaReads > upAgain + 10 ? true : undefined));
      const after = stats();
      const answered = statuses.slice(from);
      assert.deepEqual(
        answered.filter((s) => s !== 200),
        [],
        'every response a 200',
      );
      return {
        summary:
          `${what}: ${answered.length} requests, ${after.primaryReads.down + after.primaryReads.failed - before.primaryReads.down - before.primaryReads.failed} reads answered by the primary ` +
          `(${after.primaryReads.failed - before.primaryReads.failed} after failing on the replica), ${after.replicaReads - before.replicaReads} by the replica, ` +
          `${answered.filter((s) => s >= 500).length} x 5xx`,
      };
    } finally {
      await load.stop();
    }
  }

  test('the replica stopped and started again under load: reads move to the primary and back, no 5xx', async (t) => {
    const { summary } = await faultUnderLoad(
      'the replica is stopped',
      () => replicated.standby.stop(),
      () => replicated.standby.start(),
    );
    t.diagnostic(summary);
  });

  test('a replica refusing logins: reads go to the primary until it accepts them again, no 5xx', async (t) => {
    try {
      const { summary } = await faultUnderLoad(
        'the replica refuses logins',
        async () => {
          await replicated.standby.refuseLogins(true);
          await replicated.standby.terminateServiceSessions();
        },
        () => replicated.standby.refuseLogins(false),
        /unavailable.*\(28000\)/i, // pg_hba.conf rejects the role
      );
      t.diagnostic(summary);
    } finally {
      await replicated.standby.refuseLogins(false);
    }
  });

  test('no response of the suite was a 5xx', () => {
    assert.ok(statuses.length > 100);
    assert.deepEqual(
      statuses.filter((s) => s >= 500),
      [],
    );
  });
});
