import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { RIDE_DIALECT } from '../../functions/rideDialect.ts';
import { isScan } from '../../lib/http/routing/admission.ts';
import { compileRead } from '../../lib/postgrest/compileRead.ts';
import { checkQuery } from '../../lib/postgrest/checkQuery.ts';
import { DEFAULT_BOUNDS, parseQuery } from '../../lib/postgrest/parseQuery.ts';
import { listenOnLoopback, type RunningHttpServer } from '../support/httpHarness.ts';
import { runLoadInProcess, type LoadProcessPlan, type LoadProcessResult } from '../support/loadProcess.ts';
import { startTestService, type TestService } from '../support/testService.ts';

/**
 * The noisy neighbour (issue 26), with generous bounds: the benchmark (bench/noisyNeighbour.ts)
 * measures the real ratios on a million rows. One caller floods 32 connections of the most
 * expensive reads; another looks up trips. Each load runs in a process of its own (so neither
 * shares the server's event loop), on loopback, bounded in time and in requests.
 */

const ROWS = 20_000;
const SECONDS = 2;
const MAX_REQUESTS = 50_000;
const FLOODER = '198.51.100.1';
const NEIGHBOUR = '198.51.100.2';

let service: TestService;
let http: RunningHttpServer;

before(async () => {
  // Both callers come through the loopback "proxy", which names them in X-Forwarded-For.
  // DB_SCAN_COST scaled with the table: 20,000 rows are a fiftieth of the benchmark's million, and so
  // are the planner's estimates (a count of the table: about 26,000 there, 520 here).
  service = await startTestService({ rows: ROWS, env: { TRUSTED_PROXIES: '127.0.0.1,::1', DB_SCAN_COST: '100' } });
  http = await listenOnLoopback(service);
});
after(async () => {
  await http?.close();
  await service?.close();
});

type Plan = Pick<LoadProcessPlan, 'path' | 'maxN' | 'headers'>;
const load = (workers: number, plan: Plan) => runLoadInProcess({ baseUrl: http.baseUrl, workers, seconds: SECONDS, maxRequests: MAX_REQUESTS, ...plan });
const ok = (result: LoadProcessResult) => result.byStatus['200'] ?? 0;

/** Neither column has an index: every request scans the whole table (checked below), a distinct value each, so no cache answers. */
const UNINDEXED = 'passenger_count=eq.1&trip_duration=neq.{n}&order=trip_duration.desc&limit=100';
const lookups: Plan = { path: '/trips/{n}', maxN: ROWS, headers: { 'x-forwarded-for': NEIGHBOUR } };
/** Which of the scanning reads' shares (lib/db/scanShare.ts) a round's flood takes. */
type Share = 'heavy' | 'light';
const rounds: Array<{ name: string; flood: Plan; share: Share }> = [
  {
    name: 'the same URL with no-cache',
    flood: { path: '/trips/analytics', maxN: 1, headers: { 'x-forwarded-for': FLOODER, 'cache-control': 'no-cache' } },
    share: 'heavy',
  },
  {
    name: 'distinct cache misses',
    flood: { path: '/trips/pages?page={n}&page_size=10&include_count=true', maxN: ROWS / 10, headers: { 'x-forwarded-for': FLOODER } },
    share: 'heavy',
  },
  {
    name: "a generated table's unindexed filter",
    flood: { path: `/rides?${UNINDEXED}`, maxN: 100_000, headers: { 'x-forwarded-for': FLOODER } },
    share: 'heavy',
  },
  {
    name: 'a flood of light scans (keyset pages)',
    flood: { path: '/trips/stream?cursor={n}&page_size=100', maxN: ROWS - 100, headers: { 'x-forwarded-for': FLOODER, 'cache-control': 'no-cache' } },
    share: 'light',
  },
];

test("round 3's flood really scans: a Seq Scan in the compiled statement's plan, and a read that takes the scan share", async () => {
  const query = parseQuery(UNINDEXED.replace('{n}', '4242'), {}, DEFAULT_BOUNDS);
  checkQuery(RIDE_DIALECT, query);
  const statement = compileRead(RIDE_DIALECT, query);
  const { rows } = await service.database.admin.query<{ 'QUERY PLAN': string }>({ text: `EXPLAIN ${statement.text}`, values: statement.values });
  const plan = rows.map((row) => row['QUERY PLAN']).join('\n');
  assert.match(plan, /Seq Scan on nyc_train_synced/, plan);
  assert.doesNotMatch(plan, /Index/, plan);
  // Declared x-read-from: replica, so it waits for the scanning reads' share of the pool (DB_SCAN_SHARE).
  const listRides = service.router.operations.find((operation) => operation.operationId === 'listRides');
  assert.ok(listRides && isScan(listRides), 'GET /rides is a scanning read');
});

test('one caller flooding expensive reads cannot starve another caller', async (t) => {
  await load(4, lookups); // warm-up
  const lone = await load(4, lookups);
  assert.ok(ok(lone) > 0);
  for (const round of rounds) {
    await t.test(round.name, async () => {
      // Every round's flood is of scanning reads: they hold their share (and wait for it), the lookups never do.
      let scansSeen = 0;
      const sampler = setInterval(() => {
        const stats = service.ctx.scanShare?.stats();
        scansSeen = Math.max(scansSeen, (round.share === 'heavy' ? stats?.inUse : stats?.lightInUse) ?? 0);
      }, 2);
      const [flood, neighbour] = await Promise.all([load(32, round.flood), load(4, lookups)]).finally(() => clearInterval(sampler));
      assert.ok(scansSeen > 0, `the flood took the ${round.share} scanning statements' share`);
      const share = ok(neighbour) / ok(lone);
      t.diagnostic(
        `${round.name}: neighbour ${ok(neighbour)} vs ${ok(lone)} alone (${Math.round(share * 100)}%), p99 ${neighbour.p99Ms.toFixed(1)} ms; flooder ${JSON.stringify(flood.byStatus)}`,
      );
      assert.deepEqual(neighbour.errors, {});
      assert.deepEqual(Object.keys(neighbour.byStatus), ['200'], 'the neighbour is never refused');
      // Generous: the benchmark's target is 50% with p99 ≤ 100 ms; a shared test machine gets a wide margin.
      assert.ok(share >= 0.2, `the neighbour kept ${Math.round(share * 100)}% of its lone throughput`);
      assert.ok(neighbour.p99Ms <= 2000, `neighbour p99 ${neighbour.p99Ms} ms`);
      assert.deepEqual(flood.errors, {}, 'no connection errors or hangs');
      assert.ok(ok(flood) > 0, 'the flooder gets a share too');
      for (const status of Object.keys(flood.byStatus)) assert.ok(['200', '429', '503'].includes(status), `flooder got ${status}`);
      assert.equal(flood.refusalsWithoutRetryAfter, 0, 'every refusal says when to retry');
    });
  }
});
