import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { reportFigures } from '../support/figures.ts';
import { pollUntil } from '../support/pollUntil.ts';
import { listenOnLoopback, type RunningHttpServer } from '../support/httpHarness.ts';
import { runLoad, type LoadOutcome, type LoadRequest } from '../support/loadClient.ts';
import { watchProcessFaults } from '../support/processFaults.ts';
import { startRestartableDatabase, type RestartableDatabase, type StopMode } from '../support/restartableServer.ts';
import { credentialsToSend, SecretScanner } from '../support/secretScan.ts';
import { startTestService, type TestService } from '../support/testService.ts';

/**
 * The database restarts, crashes or hangs while requests keep flowing. The process must stay up,
 * answer every request during the outage with a 503/504 + Retry-After within DB_POOL_TIMEOUT (or
 * the command timeout, for a statement already sent to a server that stopped answering), serve
 * again within seconds of the database being back, and end with a pool inside its bounds holding
 * only live connections.
 */
const ROWS = 2000;
const POOL_SIZE = 3;
const POOL_MAX = 6;
const POOL_TIMEOUT_S = 2;
const COMMAND_TIMEOUT_S = 1;
/** The longest any request may wait for an answer while the database is away. */
const ANSWER_BOUND_MS = Math.max(POOL_TIMEOUT_S, COMMAND_TIMEOUT_S + 1) * 1000;
const OUTAGE_MS = 3000;
/** Longer than the command timeout, so a hung statement must be given up by the client. */
const FREEZE_MS = 5000;
const WORKERS = 8;

let db: RestartableDatabase;
let service: TestService;
let http: RunningHttpServer;
const faults = watchProcessFaults();
const sent = credentialsToSend();

before(async () => {
  db = await startRestartableDatabase(ROWS);
  service = await startTestService({
    database: { server: db, admin: db.admin, stop: () => db.destroy() },
    env: {
      DB_POOL_SIZE: String(POOL_SIZE),
      DB_MAX_OVERFLOW: String(POOL_MAX - POOL_SIZE),
      DB_POOL_TIMEOUT: String(POOL_TIMEOUT_S),
      DB_COMMAND_TIMEOUT: String(COMMAND_TIMEOUT_S),
    },
  });
  http = await listenOnLoopback(service);
});
after(async () => {
  await http?.close();
  await service?.close();
  await db?.destroy();
  faults.stop();
});

/** Reads that reach the database every time, a write, and a cached read (served from memory while the database is down). */
function mix(worker: number, seq: number): LoadRequest {
  const id = 1 + ((worker * 7919 + seq * 104729) % ROWS);
  const headers = { ...sent.headers };
  switch (seq % 4) {
    case 0:
      return { method: 'GET', path: '/trips/sample', headers, tag: 'database' };
    case 1:
      return { method: 'GET', path: `/trips/${id}`, headers: { ...headers, 'cache-control': 'no-cache' }, tag: 'database' };
    case 2:
      return {
        method: 'POST',
        path: `/trips/${id}/vendor`,
        headers: { ...headers, 'content-type': 'application/json' },
        body: JSON.stringify({ vendor_id: String(1 + (seq % 2)) }),
        tag: 'database',
      };
    default:
      return { method: 'GET', path: '/trips/count', headers, tag: 'cached' };
  }
}

async function backendsOfService(): Promise<{ total: number; busy: number }> {
  const { rows } = await db.admin.query<{ total: number; busy: number }>(
    `SELECT count(*)::int AS total, count(*) FILTER (WHERE state <> 'idle')::int AS busy
     FROM pg_stat_activity WHERE application_name = 'lakebase-api' AND pid <> pg_backend_pid()`,
  );
  return rows[0]!;
}

interface Fault {
  name: string;
  /** Injects the fault, lets it last, clears it; resolves when the database is back. */
  run(): Promise<{ downAt: number }>;
}

const stopFor =
  (mode: StopMode): Fault['run'] =>
  async () => {
    await db.stop(mode);
    const downAt = performance.now();
    await new Promise((resolve) => setTimeout(resolve, OUTAGE_MS)); // the injected outage itself
    await db.start();
    return { downAt };
  };

const FAULTS: Fault[] = [
  { name: 'database restart (fast shutdown)', run: stopFor('fast') },
  { name: 'database crash (immediate shutdown)', run: stopFor('immediate') },
  {
    name: 'database hang (all server processes stopped, connections left open)',
    async run() {
      db.freeze();
      const downAt = performance.now();
      await new Promise((resolve) => setTimeout(resolve, FREEZE_MS));
      db.thaw();
      return { downAt };
    },
  },
];

for (const fault of FAULTS) {
  test(`${fault.name} under load: answered 503/504 + Retry-After during the outage, full recovery after`, async () => {
    const scanner = new SecretScanner({ ...sent.secrets, 'database password': db.password });
    const logStart = service.logs.lines.length;
    const outcomes: Array<Pick<LoadOutcome, 'status' | 'error' | 'startedAt' | 'ms'> & { tag: string; retryAfter: string | null; problem: boolean }> = [];
    let stopLoad = false;
    let poolMaxSeen = 0;
    const poolSampler = setInterval(() => {
      poolMaxSeen = Math.max(poolMaxSeen, service.ctx.pool.totalCount);
    }, 20);

    const load = runLoad({
      baseUrl: http.baseUrl,
      workers: WORKERS,
      next: mix,
      stop: () => stopLoad,
      timeoutMs: POOL_TIMEOUT_S * 1000 + 5000,
      onOutcome: (o) => {
        scanner.scanResponse(`${o.request.method} ${o.request.path}`, o.headers, o.text);
        outcomes.push({
          status: o.status,
          error: o.error,
          startedAt: o.startedAt,
          ms: o.ms,
          tag: o.request.tag ?? '',
          retryAfter: o.headers?.get('retry-after') ?? null,
          problem: /^application\/problem\+json/.test(o.headers?.get('content-type') ?? ''),
        });
      },
    });

    try {
      // Warm: everything succeeds before the fault.
      await pollUntil('40 successful requests before the fault', 10_000, () => (outcomes.filter((o) => o.status === 200).length >= 40 ? true : undefined));
      const stoppedAt = performance.now();
      const { downAt } = await fault.run();
      const readyAt = performance.now();
      const firstSuccess = await pollUntil('a successful database request after the restart', 10_000, () =>
        outcomes.find((o) => o.tag === 'database' && o.status === 200 && o.startedAt >= readyAt),
      );
      const recoveredAt = firstSuccess.startedAt + firstSuccess.ms;
      // Keep the load on for a while after recovery: no broken connection may surface later.
      const settledAt = recoveredAt + 1000;
      await pollUntil('2 s of load after recovery', 10_000, () => (performance.now() > recoveredAt + 2000 ? true : undefined));
      stopLoad = true;
      await load;
      clearInterval(poolSampler);

      // The pool is back within its bounds and holds only live connections.
      const pool = service.ctx.pool;
      const backends = await pollUntil('the pool and the server to agree', 5000, async () => {
        const b = await backendsOfService();
        return b.total === pool.totalCount && b.busy === 0 ? b : undefined;
      });
      assert.ok(pool.totalCount <= POOL_MAX, `pool holds ${pool.totalCount} > ${POOL_MAX}`);
      assert.equal(pool.waitingCount, 0);

      const during = outcomes.filter((o) => o.startedAt >= stoppedAt && o.startedAt < readyAt);
      const afterSettle = outcomes.filter((o) => o.startedAt >= settledAt);
      const unexpected = outcomes.filter((o) => o.error || ![200, 503, 504].includes(o.status));
      const unavailable = outcomes.filter((o) => o.status === 503 || o.status === 504);
      const first503 = unavailable.find((o) => o.startedAt >= stoppedAt);
      const slowestDuringOutage = Math.max(0, ...during.map((o) => o.ms));
      const stillFailing = afterSettle.filter((o) => o.status !== 200);
      const logs = service.logs.lines.slice(logStart);
      for (const line of logs) scanner.scan('log', line);

      reportFigures(fault.name, {
        requests: outcomes.length,
        during_outage: during.length,
        ok: outcomes.filter((o) => o.status === 200).length,
        unavailable_503: outcomes.filter((o) => o.status === 503).length,
        timeout_504: outcomes.filter((o) => o.status === 504).length,
        other: unexpected.length,
        cached_ok_during_outage: during.filter((o) => o.tag === 'cached' && o.status === 200).length,
        outage_ms: Math.round(readyAt - stoppedAt),
        fault_injected_in_ms: Math.round(downAt - stoppedAt),
        first_503_after_stop_ms: first503 ? Math.round(first503.startedAt + first503.ms - stoppedAt) : -1,
        slowest_answer_during_outage_ms: Math.round(slowestDuringOutage),
        recovery_ms: Math.round(recoveredAt - readyAt),
        errors_after_recovery: stillFailing.length,
        pool_max_seen: poolMaxSeen,
        pool_end: pool.totalCount,
        server_backends_end: backends.total,
        secret_hits: scanner.hits.length,
      });

      assert.deepEqual(faults.faults, [], 'the process never crashed');
      assert.deepEqual(
        unexpected.map((o) => o.error ?? o.status),
        [],
        'every request got a 200, 503 or 504; none hung or failed otherwise',
      );
      assert.ok(unavailable.length > 0, 'the outage was seen');
      for (const o of unavailable) {
        assert.ok(o.problem, '503/504 is a problem+json');
        assert.ok(Number(o.retryAfter) > 0, '503/504 carries Retry-After');
      }
      assert.ok(
        slowestDuringOutage < ANSWER_BOUND_MS + 1500,
        `answers during the outage within ${ANSWER_BOUND_MS} ms (slowest ${slowestDuringOutage.toFixed(0)} ms)`,
      );
      assert.ok(recoveredAt - readyAt < 5000, `first success ${(recoveredAt - readyAt).toFixed(0)} ms after the database was back`);
      assert.deepEqual(
        stillFailing.map((o) => o.status),
        [],
        'no failure once recovered: broken connections were discarded',
      );
      assert.ok(poolMaxSeen <= POOL_MAX, `pool never above ${POOL_MAX} (saw ${poolMaxSeen})`);
      assert.ok(
        logs.some((l) => /"status":50[34]/.test(l)),
        '503/504s are logged',
      );
      assert.deepEqual(scanner.hits, [], 'no secret in any log line or response');
    } finally {
      stopLoad = true;
      clearInterval(poolSampler);
      await load;
      db.thaw();
      if (!db.isRunning()) await db.start();
    }
  });
}
