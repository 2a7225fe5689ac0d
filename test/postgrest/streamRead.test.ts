import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { PeakRssSampler, rssMiB, type ServerProcess, startServer } from '../../bench/serverProcess.ts';
import { pollUntil } from '../support/pollUntil.ts';
import { startTestDatabase, type TestDatabase } from '../support/testService.ts';
import { TRIP_COLUMN_NAMES } from '../../lib/db/tripsTable.ts';

/**
 * Large reads stream from a cursor at constant memory: the service runs in a child process (as
 * `npm start` serves it) over 400,000 rides with DB_MAX_ROWS above that, and the whole table leaves
 * as CSV and as JSON while the child's peak RSS is sampled. The bytes are what SQL says, and a
 * client that hangs up mid-export ends the cursor's transaction.
 */
const ROWS = 400_000;
let database: TestDatabase;
let server: ServerProcess;
const logDir = mkdtempSync(join(tmpdir(), 'lakebase-api-stream-'));

before(async () => {
  database = await startTestDatabase(ROWS);
  const { host, port, database: name, user, password } = database.server;
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    PGHOST: host,
    PGPORT: String(port),
    PGDATABASE: name,
    PGUSER: user,
    PGPASSWORD: password,
    PGSSLMODE: 'disable',
    DB_MAX_ROWS: String(ROWS * 2),
    LOG_LEVEL: 'warn',
    CACHE_ENABLED: 'true',
  };
  server = await startServer({
    name: 'service',
    script: join(import.meta.dirname, '../../bench/servers/service.ts'),
    env,
    logFile: join(logDir, 'service.log'),
  });
});

after(async () => {
  await server?.stop();
  await database?.stop();
  rmSync(logDir, { recursive: true, force: true });
});

/** The trips table's columns in table order (lib/db/tripsTable.ts, the one list of them). */
const COLUMNS = TRIP_COLUMN_NAMES;
const SELECT = COLUMNS.join(',');
/** The same rows as the export's CSV lines, formatted by Postgres (in JSON's forms of timestamps and floats: none needs quoting). */
const EXPECTED_LINES = `format('${COLUMNS.map(() => '%s').join(',')}', ${COLUMNS.map((c) => `to_json(${c}) #>> '{}'`).join(', ')}) || E'\\n'`;

/** Reads a response body chunk by chunk, keeping only its digest and size: this process stays small too. */
async function digest(response: Response): Promise<{ md5: string; bytes: number; head: string }> {
  const hash = createHash('md5');
  let bytes = 0;
  let head = '';
  for await (const chunk of response.body as ReadableStream<Uint8Array>) {
    hash.update(chunk);
    bytes += chunk.byteLength;
    if (head.length < 200) head += Buffer.from(chunk).toString('utf8', 0, 200);
  }
  return { md5: hash.digest('hex'), bytes, head };
}

/** The child's RSS above its warm level while `work` runs, and what `work` returned. */
async function measured<T>(work: () => Promise<T>): Promise<{ result: T; growthMiB: number }> {
  const before = rssMiB(server.pid) ?? 0;
  server.resetPeakRss();
  const sampler = new PeakRssSampler(server, 50);
  const result = await work();
  const peak = sampler.stop() ?? before;
  return { result, growthMiB: peak - before };
}

test('a 400k-row CSV export streams at constant memory and equals SQL', { timeout: 180_000 }, async (t) => {
  // Warm: the first export loads code paths and lets the heap's young generation grow to its working
  // size (a one-off of a few MiB whatever the size); the measured one is the second.
  await digest(await fetch(`${server.origin}/rides?select=${SELECT}`, { headers: { accept: 'text/csv' } }));
  const { result, growthMiB } = await measured(async () => {
    const response = await fetch(`${server.origin}/rides?select=${SELECT}`, { headers: { accept: 'text/csv' } });
    assert.equal(response.status, 200);
    assert.equal(response.headers.get('content-type'), 'text/csv; charset=utf-8');
    assert.equal(response.headers.get('content-range'), `0-${ROWS - 1}/*`);
    assert.equal(response.headers.get('etag'), null, 'a stream is not cached');
    assert.equal(response.headers.get('cache-control'), 'no-store');
    return digest(response);
  });
  const header = `${SELECT}\n`;
  const { rows } = await database.admin.query<{ md5: string; bytes: string }>(
    `SELECT md5($1 || string_agg(line, '' ORDER BY id)) AS md5, octet_length($1 || string_agg(line, '')) AS bytes FROM (SELECT id, ${EXPECTED_LINES} AS line FROM public.nyc_train_synced) AS l`,
    [header],
  );
  assert.ok(result.head.startsWith(header), result.head);
  assert.equal(result.bytes, Number(rows[0]?.bytes));
  assert.equal(result.md5, rows[0]?.md5, 'the CSV is not what SQL says');
  const payloadMiB = result.bytes / 1024 / 1024;
  t.diagnostic(`${payloadMiB.toFixed(1)} MiB exported; the service's RSS grew ${growthMiB.toFixed(1)} MiB`);
  // A buffered answer holds the JSON text (larger than the CSV), the parsed rows and the CSV at once:
  // several times the payload. A stream's growth is the heap's working room (the young generation,
  // garbage awaiting a major collection), which depends on GC timing on a busy machine, not on the size.
  assert.ok(payloadMiB > 32, `a ${payloadMiB.toFixed(1)} MiB export is too small to tell`);
  assert.ok(growthMiB < payloadMiB / 2, `RSS grew ${growthMiB.toFixed(1)} MiB for a ${payloadMiB.toFixed(1)} MiB export`);
});

test('a JSON page past 1000 rows streams too, with Content-Range and 206 when counted', { timeout: 120_000 }, async () => {
  const { result, growthMiB } = await measured(async () => {
    const response = await fetch(`${server.origin}/rides?select=id,vendor_id,pickup_datetime`);
    assert.equal(response.status, 200);
    assert.equal(response.headers.get('content-range'), `0-${ROWS - 1}/*`);
    assert.equal(response.headers.get('etag'), null);
    return (await response.json()) as Array<{ id: number }>;
  });
  assert.equal(result.length, ROWS);
  assert.deepEqual(
    result.slice(0, 3).map((r) => r.id),
    [1, 2, 3],
  );
  assert.ok(growthMiB < 64, `RSS grew ${growthMiB.toFixed(1)} MiB`);

  const counted = await fetch(`${server.origin}/rides?select=id&offset=10&limit=5000`, { headers: { prefer: 'count=exact' } });
  assert.equal(counted.status, 206);
  assert.equal(counted.headers.get('content-range'), `10-5009/${ROWS}`);
  const ids = (await counted.json()) as Array<{ id: number }>;
  assert.equal(ids.length, 5000);
  assert.equal(ids[0]?.id, 11);
  // Refusals still come as problems, before the first byte: past the end (416), a value Postgres cannot read (400).
  const csv = { accept: 'text/csv' };
  const past = await fetch(`${server.origin}/rides?offset=${ROWS + 5}`, { headers: { ...csv, prefer: 'count=exact' } });
  assert.equal(past.status, 416);
  assert.equal(((await past.json()) as { code: string }).code, 'PGRST103');
  const refused = await fetch(`${server.origin}/rides?select=store_and_fwd_flag::int`, { headers: csv });
  assert.equal(refused.status, 400);
  assert.equal(((await refused.json()) as { code: string }).code, '22P02');
  const ranged = await fetch(`${server.origin}/rides?select=id`, { headers: { ...csv, range: '5-9', prefer: 'count=exact' } });
  assert.equal(ranged.status, 206);
  assert.equal(ranged.headers.get('content-range'), `5-9/${ROWS}`);
  assert.equal(await ranged.text(), 'id\n6\n7\n8\n9\n10\n');
  // A full page walking the key links to the next, as a buffered page does.
  const link = (await fetch(`${server.origin}/rides?select=id&limit=2000`)).headers.get('link');
  assert.equal(link, '</rides?limit=2000&select=id&id=gt.2000>; rel="next"');
});

test('a client that hangs up mid-export ends the cursor and its transaction', { timeout: 120_000 }, async () => {
  const abort = new AbortController();
  const response = await fetch(`${server.origin}/rides`, { headers: { accept: 'text/csv' }, signal: abort.signal });
  const reader = (response.body as ReadableStream<Uint8Array>).getReader();
  await reader.read();
  const open = async () => {
    const { rows } = await database.admin.query<{ n: string }>(
      `SELECT count(*) AS n FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND datname = current_database() AND (state LIKE 'idle in transaction%' OR (state = 'active' AND query LIKE 'FETCH%'))`,
    );
    return Number(rows[0]?.n);
  };
  assert.equal(await open(), 1, 'the export holds one transaction while the client reads slowly');
  abort.abort();
  await pollUntil('the export transaction to end', 10_000, async () => ((await open()) === 0 ? true : undefined));
  // The service goes on serving.
  assert.equal((await fetch(`${server.origin}/rides?select=id&id=eq.1`)).status, 200);
});
