import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { hydrateSymlinks, processAlive, startEmbeddedPostgres, type EmbeddedPostgres } from '../../lib/db/embeddedPostgres.ts';
import { quoteIdent, seedTrips, tripsChecksum } from '../../lib/db/seedTrips.ts';

/**
 * The embedded PostgreSQL and the deterministic seed, against real servers: a throw-away one for
 * the seed, and a persistent data directory for restarts and crash recovery.
 */

const ROWS = 2000;
/**
 * md5 over the first 2000 seeded rows. The generator uses integer arithmetic only, so this holds on
 * every platform; if it changes, the generated data changed: bump SEED_VERSION in seedTrips.ts
 * (so existing databases are re-seeded) and update it here.
 */
const CHECKSUM_2000 = '5b0057960de4e46b52541e4f2ecc43b5';

const silent = { info: () => undefined, warn: () => undefined };

function recordingLogger() {
  const lines: Array<{ level: string; msg: string; obj: object }> = [];
  const at = (level: string) => (obj: object, msg?: string) => void lines.push({ level, msg: msg ?? '', obj });
  return { lines, logger: { info: at('info'), warn: at('warn'), debug: at('debug') } };
}

async function eventually(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

async function canConnect(server: Pick<EmbeddedPostgres, 'connectionConfig'>): Promise<boolean> {
  const client = new pg.Client({ ...server.connectionConfig(), connectionTimeoutMillis: 2000 });
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.end();
    return true;
  } catch {
    return false;
  }
}

const tempDirs: string[] = [];
function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  tempDirs.push(dir);
  return dir;
}
after(() => {
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
});

describe('a throw-away server and the seed', () => {
  let server: EmbeddedPostgres;
  let admin: pg.Pool;
  let dataDir: string;
  const listenersBefore = {
    SIGINT: process.listenerCount('SIGINT'),
    SIGTERM: process.listenerCount('SIGTERM'),
    beforeExit: process.listenerCount('beforeExit'),
  };

  before(async () => {
    dataDir = tempDir('lakebase-embedded-test-');
    server = await startEmbeddedPostgres({ dataDir, port: 0, persistent: false, logger: silent });
    admin = new pg.Pool({ ...server.connectionConfig(), max: 4 });
  });
  after(async () => {
    if (!admin?.ended) await admin?.end();
    await server?.stop();
  });

  test('listens on loopback with the application database and test settings', async () => {
    assert.equal(server.host, '127.0.0.1');
    assert.ok(server.port > 0);
    assert.equal(server.database, 'lakebase_api');
    const { rows } = await admin.query(
      `SELECT current_database() AS db, current_user AS usr, current_setting('listen_addresses') AS listen,
              current_setting('fsync') AS fsync, current_setting('wal_level') AS wal, current_setting('server_version_num')::int AS version`,
    );
    assert.deepEqual(rows[0], { db: 'lakebase_api', usr: 'postgres', listen: '127.0.0.1', fsync: 'off', wal: 'minimal', version: rows[0].version });
    assert.ok(rows[0].version >= 170000);
    const viaUrl = new pg.Client({ connectionString: server.connectionString() });
    await viaUrl.connect();
    assert.equal((await viaUrl.query('SELECT 1 AS one')).rows[0].one, 1);
    await viaUrl.end();
  });

  test('leaves graceful shutdown to the application: no SIGINT/SIGTERM/beforeExit hooks of its own', () => {
    assert.equal(process.listenerCount('SIGINT'), listenersBefore.SIGINT);
    assert.equal(process.listenerCount('SIGTERM'), listenersBefore.SIGTERM);
    assert.equal(process.listenerCount('beforeExit'), listenersBefore.beforeExit);
  });

  test('seeds the rows once, with a primary key, logging progress', async () => {
    const { lines, logger } = recordingLogger();
    const first = await seedTrips(admin, { schema: 'public', table: 'nyc_train_synced', rows: ROWS, logger });
    assert.equal(first.reused, false);
    assert.equal(first.rows, ROWS);
    assert.ok(lines.some((l) => l.msg === `Seeding ${ROWS} synthetic trips into public.nyc_train_synced`));
    assert.ok(lines.some((l) => /^Seeded 2000 trips into public\.nyc_train_synced in \d+\.\d s$/.test(l.msg)));

    const { rows } = await admin.query(
      'SELECT count(*)::int AS n, min(id)::int AS lo, max(id)::int AS hi, count(DISTINCT id)::int AS distinct_ids FROM nyc_train_synced',
    );
    assert.deepEqual(rows[0], { n: ROWS, lo: 1, hi: ROWS, distinct_ids: ROWS });
    const pk = await admin.query(`SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
                                  WHERE i.indrelid = 'public.nyc_train_synced'::regclass AND i.indisprimary`);
    assert.deepEqual(pk.rows, [{ attname: 'id' }]);
    const analyzed = await admin.query(`SELECT reltuples::int AS n FROM pg_class WHERE oid = 'public.nyc_train_synced'::regclass`);
    assert.equal(analyzed.rows[0].n, ROWS, 'ANALYZEd');

    const again = await seedTrips(admin, { schema: 'public', table: 'nyc_train_synced', rows: ROWS });
    assert.equal(again.reused, true);
    assert.ok(again.ms < 1000);
  });

  test('has the documented column types', async () => {
    const { rows } = await admin.query(
      `SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = 'public' AND table_name = 'nyc_train_synced' ORDER BY ordinal_position`,
    );
    assert.deepEqual(
      rows.map((r) => `${r.column_name} ${r.data_type}`),
      [
        'id bigint',
        'vendor_id text',
        'pickup_datetime timestamp without time zone',
        'dropoff_datetime timestamp without time zone',
        'passenger_count smallint',
        'pickup_longitude double precision',
        'pickup_latitude double precision',
        'dropoff_longitude double precision',
        'dropoff_latitude double precision',
        'store_and_fwd_flag text',
        'trip_duration integer',
      ],
    );
  });

  test('is deterministic: the same rows in another table, and the pinned checksum', async () => {
    const copy = { schema: 'Other schema', table: 'Trips "copy"' };
    await seedTrips(admin, { ...copy, rows: ROWS });
    const original = await tripsChecksum(admin, { schema: 'public', table: 'nyc_train_synced' });
    assert.equal(await tripsChecksum(admin, copy), original);
    assert.equal(original, CHECKSUM_2000);
    // A longer seed extends the shorter one: row n never depends on the row count.
    await seedTrips(admin, { ...copy, rows: ROWS + 500 });
    await admin.query(`DELETE FROM ${quoteIdent(copy.schema)}.${quoteIdent(copy.table)} WHERE id > ${ROWS}`);
    assert.equal(await tripsChecksum(admin, copy), original);
    await admin.query(`DROP SCHEMA ${quoteIdent(copy.schema)} CASCADE`);
  });

  test('generates realistic values', async () => {
    const { rows } = await admin.query(`
      SELECT count(*) FILTER (WHERE vendor_id NOT IN ('1', '2')) AS bad_vendor,
             round(100.0 * count(*) FILTER (WHERE vendor_id = '2') / count(*)) AS vendor2_pct,
             min(pickup_datetime) >= '2016-01-01' AND max(pickup_datetime) < '2016-07-01' AS first_half_2016,
             count(*) FILTER (WHERE dropoff_datetime <> pickup_datetime + trip_duration * interval '1 second') AS bad_dropoff,
             min(passenger_count) AS min_passengers, max(passenger_count) AS max_passengers,
             round(100.0 * count(*) FILTER (WHERE passenger_count = 1) / count(*)) AS solo_pct,
             min(trip_duration) >= 60 AS min_duration_ok, max(trip_duration) <= 4 * 3600 AS max_duration_ok,
             round(100.0 * count(*) FILTER (WHERE trip_duration BETWEEN 180 AND 2400) / count(*)) AS three_to_forty_min_pct,
             count(*) FILTER (WHERE least(pickup_longitude, dropoff_longitude) < -74.02 OR greatest(pickup_longitude, dropoff_longitude) > -73.77
                                OR least(pickup_latitude, dropoff_latitude) < 40.63 OR greatest(pickup_latitude, dropoff_latitude) > 40.85) AS outside_nyc,
             round(100.0 * count(*) FILTER (WHERE pickup_longitude BETWEEN -74.02 AND -73.93 AND pickup_latitude BETWEEN 40.70 AND 40.88) / count(*)) AS manhattan_pct,
             count(*) FILTER (WHERE store_and_fwd_flag NOT IN ('N', 'Y')) AS bad_flag,
             count(*) FILTER (WHERE store_and_fwd_flag = 'Y') AS flagged
        FROM nyc_train_synced`);
    const s = rows[0];
    assert.equal(Number(s.bad_vendor), 0);
    assert.ok(Number(s.vendor2_pct) >= 50 && Number(s.vendor2_pct) <= 57, `vendor 2: ${s.vendor2_pct}%`);
    assert.equal(s.first_half_2016, true);
    assert.equal(Number(s.bad_dropoff), 0);
    assert.equal(s.min_passengers, 1);
    assert.equal(s.max_passengers, 6);
    assert.ok(Number(s.solo_pct) >= 65 && Number(s.solo_pct) <= 77, `solo: ${s.solo_pct}%`);
    assert.equal(s.min_duration_ok, true);
    assert.equal(s.max_duration_ok, true);
    assert.ok(Number(s.three_to_forty_min_pct) >= 85, `3-40 min: ${s.three_to_forty_min_pct}%`);
    assert.equal(Number(s.outside_nyc), 0);
    assert.ok(Number(s.manhattan_pct) >= 75, `Manhattan: ${s.manhattan_pct}%`);
    assert.equal(Number(s.bad_flag), 0);
    assert.ok(Number(s.flagged) >= 1 && Number(s.flagged) <= 30, `flagged: ${s.flagged}`);

    const hours = await admin.query(
      `SELECT extract(hour FROM pickup_datetime)::int AS h, count(*)::int AS n FROM nyc_train_synced GROUP BY 1 ORDER BY 2 DESC, 1`,
    );
    const byHour = new Map(hours.rows.map((r) => [r.h as number, r.n as number]));
    assert.ok([18, 19].includes(hours.rows[0].h), `the peak hour is in the evening, got ${hours.rows[0].h}`);
    const night = (byHour.get(3) ?? 0) + (byHour.get(4) ?? 0) + (byHour.get(5) ?? 0);
    const morning = (byHour.get(8) ?? 0) + (byHour.get(9) ?? 0);
    assert.ok(night * 2 < morning, `few trips at 3-5 am (${night}) against the morning rush (${morning})`);
  });

  test('a table edited after seeding still counts as seeded', async () => {
    await admin.query(`UPDATE nyc_train_synced SET vendor_id = 'Z' WHERE id = 5`);
    const result = await seedTrips(admin, { schema: 'public', table: 'nyc_train_synced', rows: ROWS });
    assert.equal(result.reused, true);
    assert.equal((await admin.query('SELECT vendor_id FROM nyc_train_synced WHERE id = 5')).rows[0].vendor_id, 'Z');
  });

  test('another row count (SAMPLE_ROWS changed) re-seeds', async () => {
    await seedTrips(admin, { schema: 'public', table: 'resized', rows: 300 });
    const bigger = await seedTrips(admin, { schema: 'public', table: 'resized', rows: 500 });
    assert.equal(bigger.reused, false);
    assert.equal((await admin.query('SELECT count(*)::int AS n FROM resized')).rows[0].n, 500);
    await admin.query('DROP TABLE resized');
  });

  test('a table the seeder did not create is left alone', async () => {
    await admin.query('CREATE TABLE mine (id bigint primary key, note text)');
    await admin.query(`INSERT INTO mine VALUES (1, 'keep me')`);
    const { lines, logger } = recordingLogger();
    const result = await seedTrips(admin, { schema: 'public', table: 'mine', rows: 100, logger });
    assert.deepEqual({ rows: result.rows, reused: result.reused }, { rows: 1, reused: true });
    assert.ok(lines.some((l) => l.level === 'warn' && /not created by the seeder/.test(l.msg)));
    assert.equal((await admin.query('SELECT note FROM mine')).rows[0].note, 'keep me');
    await admin.query('DROP TABLE mine');
  });

  test('two processes seeding at once: one seeds, the other waits and reuses', async () => {
    const results = await Promise.all([
      seedTrips(admin, { schema: 'public', table: 'raced', rows: 20_000 }),
      seedTrips(admin, { schema: 'public', table: 'raced', rows: 20_000 }),
    ]);
    assert.deepEqual(results.map((r) => r.reused).sort(), [false, true]);
    assert.equal((await admin.query('SELECT count(*)::int AS n FROM raced')).rows[0].n, 20_000);
    await admin.query('DROP TABLE raced');
  });

  test('a seed killed half-way leaves no table behind, and the next start seeds it', async () => {
    const victim = new pg.Client(server.connectionConfig());
    await victim.connect();
    victim.on('error', () => undefined);
    const pid = (await victim.query('SELECT pg_backend_pid() AS pid')).rows[0].pid as number;
    const seeding = seedTrips(victim, { schema: 'public', table: 'interrupted', rows: 1_000_000 });
    await eventually(async () => {
      const { rows } = await admin.query(`SELECT query FROM pg_stat_activity WHERE pid = $1`, [pid]);
      return /INSERT INTO/.test(rows[0]?.query ?? '');
    }, 'the bulk insert to start');
    await admin.query('SELECT pg_terminate_backend($1)', [pid]);
    await assert.rejects(seeding);
    await victim.end().catch(() => undefined);
    assert.equal((await admin.query(`SELECT to_regclass('public.interrupted') AS t`)).rows[0].t, null);
    const retried = await seedTrips(admin, { schema: 'public', table: 'interrupted', rows: 1000 });
    assert.equal(retried.reused, false);
    await admin.query('DROP TABLE interrupted');
  });

  test('stop() is safe to call twice and deletes a throw-away data directory', async () => {
    await admin.end();
    await Promise.all([server.stop(), server.stop()]);
    await server.stop();
    assert.equal(existsSync(dataDir), false);
    assert.equal(await canConnect(server), false);
  });
});

describe('a persistent data directory', () => {
  let parent: string;
  let dataDir: string;

  before(async () => {
    parent = tempDir('lakebase-embedded-other-');
    // The directory itself, not a child of it: as root, PostgreSQL runs as the postgres user, which
    // cannot enter a 0700 directory of root's (startEmbeddedPostgres says so, clearly).
    dataDir = tempDir('lakebase-embedded-persistent-');
    const server = await startEmbeddedPostgres({ dataDir, logger: silent });
    const client = new pg.Client(server.connectionConfig());
    await client.connect();
    await seedTrips(client, { schema: 'public', table: 'nyc_train_synced', rows: 500 });
    await client.end();
    await server.stop();
  });

  test('restarts in a few seconds with the data kept', async () => {
    const started = Date.now();
    const { lines, logger } = recordingLogger();
    const server = await startEmbeddedPostgres({ dataDir, logger });
    const ms = Date.now() - started;
    try {
      assert.ok(ms < 5000, `restarted in ${ms} ms`);
      assert.ok(!lines.some((l) => /Initialising/.test(l.msg)), 'no initdb on a re-used directory');
      const client = new pg.Client(server.connectionConfig());
      await client.connect();
      const result = await seedTrips(client, { schema: 'public', table: 'nyc_train_synced', rows: 500 });
      await client.end();
      assert.equal(result.reused, true);
    } finally {
      await server.stop();
    }
    assert.ok(existsSync(join(dataDir, 'PG_VERSION')), 'a persistent directory survives stop()');
  });

  test('starts after a crash left a stale postmaster.pid whose pid is now another process', async () => {
    // Our own pid: alive, but not a postgres on this directory (as after a container restart).
    writeFileSync(join(dataDir, 'postmaster.pid'), `${process.pid}\n${dataDir}\n0\n5432\n\n127.0.0.1\n0 0\nready\n`);
    const server = await startEmbeddedPostgres({ dataDir, logger: silent });
    try {
      assert.ok(await canConnect(server));
      assert.ok(processAlive(process.pid));
    } finally {
      await server.stop();
    }
  });

  test('stops an orphaned server left by a process killed with SIGKILL, then starts', async () => {
    const script = `
      import { startEmbeddedPostgres } from ${JSON.stringify(new URL('../../lib/db/embeddedPostgres.ts', import.meta.url).href)};
      await startEmbeddedPostgres({ dataDir: ${JSON.stringify(dataDir)} });
      console.log('ready');
      setInterval(() => undefined, 1000);`;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    await eventually(() => output.includes('ready'), 'the child to start its server', 60_000);
    const orphan = Number(readFileSync(join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    assert.ok(processAlive(orphan), 'the server outlived its parent');

    const { lines, logger } = recordingLogger();
    const server = await startEmbeddedPostgres({ dataDir, logger });
    try {
      assert.equal(processAlive(orphan), false);
      assert.ok(lines.some((l) => l.level === 'warn' && /still running/.test(l.msg)));
      assert.ok(await canConnect(server));
    } finally {
      await server.stop();
    }
  });

  test('a process that exits without stop() takes its server with it', async () => {
    const script = `
      import { startEmbeddedPostgres } from ${JSON.stringify(new URL('../../lib/db/embeddedPostgres.ts', import.meta.url).href)};
      await startEmbeddedPostgres({ dataDir: ${JSON.stringify(dataDir)} });
      process.exit(3);`;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['ignore', 'inherit', 'inherit'] });
    const code = await new Promise((r) => child.once('exit', r));
    assert.equal(code, 3);
    await eventually(() => !existsSync(join(dataDir, 'postmaster.pid')), 'the server to shut down');
  });

  test('stop() after PostgreSQL died on its own (Ctrl-C reaches it directly) returns', async () => {
    const { lines, logger } = recordingLogger();
    const server = await startEmbeddedPostgres({ dataDir, logger });
    const pid = Number(readFileSync(join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
    process.kill(pid, 'SIGINT');
    await eventually(() => lines.some((l) => l.level === 'warn' && /exited unexpectedly/.test(l.msg)), 'the warning');
    assert.equal(processAlive(pid), false);
    await server.stop();
    await server.stop();
  });

  test('refuses a non-empty directory that is not a cluster', async () => {
    chmodSync(parent, 0o755);
    const notACluster = join(parent, 'documents');
    mkdirSync(notACluster);
    writeFileSync(join(notACluster, 'precious.txt'), 'do not delete');
    await assert.rejects(startEmbeddedPostgres({ dataDir: notACluster, logger: silent }), /not empty and is not a PostgreSQL data directory/);
    assert.equal(readFileSync(join(notACluster, 'precious.txt'), 'utf8'), 'do not delete');
  });

  test('as root, says so when the postgres user cannot reach the data directory', { skip: process.getuid?.() !== 0 && 'not running as root' }, async () => {
    const privateDir = tempDir('lakebase-embedded-private-');
    chmodSync(privateDir, 0o700);
    await assert.rejects(
      startEmbeddedPostgres({ dataDir: join(privateDir, 'postgres'), logger: silent }),
      (err: Error) => err.message.includes(`no search permission on ${privateDir}`) && err.message.includes('EMBEDDED_PG_DATA_DIR'),
    );
  });
});

test('re-creates missing and dangling library symlinks listed by the platform package', async () => {
  const pkg = tempDir('lakebase-embedded-symlinks-');
  mkdirSync(join(pkg, 'native', 'lib'), { recursive: true });
  writeFileSync(join(pkg, 'native', 'lib', 'libpq.so.5.17'), '');
  writeFileSync(join(pkg, 'native', 'lib', 'libicuuc.so.60.2'), '');
  symlinkSync('gone.so', join(pkg, 'native', 'lib', 'libicuuc.so'));
  writeFileSync(
    join(pkg, 'native', 'pg-symlinks.json'),
    JSON.stringify([
      { source: 'native/lib/libpq.so.5.17', target: 'native/lib/libpq.so.5' },
      { source: 'native/lib/libpq.so.5.17', target: 'native/lib/libpq.so' },
      { source: 'native/lib/libicuuc.so.60.2', target: 'native/lib/libicuuc.so' },
    ]),
  );
  assert.equal(await hydrateSymlinks(pkg), 3);
  assert.equal(readlinkSync(join(pkg, 'native', 'lib', 'libpq.so.5')), 'libpq.so.5.17');
  assert.equal(readlinkSync(join(pkg, 'native', 'lib', 'libicuuc.so')), 'libicuuc.so.60.2');
  assert.equal(await hydrateSymlinks(pkg), 0, 'idempotent');
});
