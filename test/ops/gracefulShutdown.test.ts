import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { after, before, test } from 'node:test';
import { shutDownGracefully } from '../../lib/ops/gracefulShutdown.ts';
import { startTestService, type TestService } from '../support/testService.ts';

async function eventually<T>(what: string, probe: () => Promise<T | undefined>, deadlineMs = 20_000): Promise<T> {
  const deadline = Date.now() + deadlineMs;
  while (Date.now() < deadline) {
    const value = await probe();
    if (value !== undefined) return value;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`${what} did not happen within ${deadlineMs} ms`);
}

let service: TestService;
before(async () => {
  service = await startTestService({ rows: 200 });
});
after(async () => {
  await service?.close();
});

test('shutdown is observable: readiness 503 first, then in-flight requests finish, then the pool closes', async () => {
  const server = createServer(service.app);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const base = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  const { admin } = service.database;
  const messages = () => service.logs.records().map((r) => String(r.msg));

  // A request that is really in flight: its query waits on a table lock held by the test.
  const locker = await admin.connect();
  let shutdown: Promise<void> | undefined;
  try {
    await locker.query('BEGIN');
    await locker.query('LOCK TABLE nyc_train_synced IN ACCESS EXCLUSIVE MODE');
    const inFlight = fetch(`${base}/trips/count`, { headers: { 'x-request-id': 'in-flight' } });
    await eventually('the count query waiting on the lock', async () => {
      const { rows } = await admin.query<{ n: number }>(
        "SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = 'lakebase-api' AND wait_event_type = 'Lock'",
      );
      return rows[0]!.n > 0 ? true : undefined;
    });

    // A generous drain so the 503 can be observed over HTTP before the listener closes.
    shutdown = shutDownGracefully({ server, ctx: service.ctx, drainSeconds: 1.5, graceMs: 20_000 }, 'SIGTERM');
    const ready = await fetch(`${base}/health/ready`, { headers: { 'x-request-id': 'drain-probe' } });
    assert.equal(ready.status, 503);
    assert.deepEqual(((await ready.json()) as { failing: string[] }).failing, ['server']);

    // After the drain the listener refuses new connections, while the request in flight still waits.
    await eventually('the listener to close', () =>
      fetch(`${base}/health`).then(
        () => undefined,
        () => true,
      ),
    );
    assert.equal(service.ctx.pool.ended, false, 'the pool stays open for the request in flight');
    assert.ok(messages().includes('Listener closed to new connections; finishing in-flight requests'));

    await locker.query('COMMIT');
    const response = await inFlight;
    assert.equal(response.status, 200, 'the in-flight request finishes');
    assert.deepEqual(await response.json(), { total_trips: 200 });
  } finally {
    await locker.query('ROLLBACK').catch(() => undefined);
    locker.release();
  }
  await shutdown;
  assert.equal(service.ctx.pool.ended, true, 'the pool is closed at the end');

  // The log tells the same story, in order.
  const log = messages();
  const at = (text: string | RegExp) => {
    const i = log.findIndex((m) => (typeof text === 'string' ? m === text : text.test(m)));
    assert.ok(i >= 0, `logged: ${text}`);
    return i;
  };
  const records = service.logs.records();
  const lineOf = (reqId: string) => records.findIndex((r) => r.reqId === reqId && typeof r.ms === 'number');
  const order = [
    at('Shutting down: readiness now answers 503'),
    lineOf('drain-probe'),
    at('Listener closed to new connections; finishing in-flight requests'),
    lineOf('in-flight'),
    at('In-flight requests finished; closing the database pool'),
    at('Database pool closed'),
  ];
  assert.ok(
    order.every((i) => i >= 0),
    `all steps logged: ${order}`,
  );
  assert.deepEqual(
    [...order].sort((a, b) => a - b),
    order,
    'in this order',
  );
});
