import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { mapDatabaseError } from '../../lib/db/databaseErrors.ts';
import { PostgrestError } from '../../lib/postgrest/postgrestError.ts';
import { parseForTable } from '../../lib/postgrest/serveTable.ts';
import type { PostgrestTable } from '../../lib/postgrest/tableShape.ts';
import { refusedRow } from '../../lib/tables/rowRefusals.ts';
import { readTable, TableNotReadable, parseTableName } from '../../tools/addTable/catalog.ts';
import { readChecks, withRules } from '../../tools/addTable/checkConstraints.ts';
import { planTable } from '../../tools/addTable/tablePlan.ts';
import { fixtureValue, TableRows } from '../support/tableRows.ts';
import { startTestDatabase, type TestDatabase } from '../support/testService.ts';
import { FIXTURE_COMMANDS, FIXTURE_DDL } from './fixtureTables.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

let database: TestDatabase;

before(async () => {
  database = await startTestDatabase(10);
  await database.admin.query(FIXTURE_DDL);
});
after(async () => {
  await database?.stop();
});

const read = (name: string) => readTable(database.admin, parseTableName(name));

describe('catalog reader', () => {
  test('table names: schema.table, a bare table in public, quoted parts', () => {
    assert.deepEqual(parseTableName('public.trips'), { schema: 'public', table: 'trips' });
    assert.deepEqual(parseTableName('trips'), { schema: 'public', table: 'trips' });
    assert.deepEqual(parseTableName('"Sales"."Order Items"'), { schema: 'Sales', table: 'Order Items' });
    assert.deepEqual(parseTableName('"a.b"."say ""hi"""'), { schema: 'a.b', table: 'say "hi"' });
    assert.throws(() => parseTableName('a.b.c'), /expected <schema>.<table>/);
  });

  test('columns, types through domains, enums and arrays, defaults, identity, generated, keys, indexes, comments', async () => {
    const table = await read('public.everything');
    const column = (name: string) => table.columns.find((c) => c.name === name)!;
    assert.equal(table.comment, 'A column of every mapped type');
    assert.deepEqual(table.primaryKey, ['id']);
    assert.equal(column('id').identity, 'by default');
    assert.equal(column('small').defaultExpr, '1');
    assert.equal(column('total').generatedExpr, '(price * (2)::numeric)');
    assert.equal(column('price').comment, 'Unit price in euros');
    assert.deepEqual([column('price').type.precision, column('price').type.scale], [10, 2]);
    assert.equal(column('code').type.maxLength, 12);
    assert.equal(column('letter').type.maxLength, 3);
    assert.equal(column('letter').type.sql, 'bpchar', 'a cast to plain "character" would cut values to one character');
    assert.deepEqual(column('feeling').type.enumLabels, ['sad', 'ok', 'happy']);
    assert.equal(column('moods').type.element!.kind, 'enum');
    assert.equal(column('scores').type.element!.precision, 6);
    assert.equal(column('qty').type.kind, 'domain');
    assert.equal(column('qty').type.base!.name, 'int4');
    assert.deepEqual(column('qty').type.domainChecks, ['CHECK ((VALUE > 0))']);
    assert.ok(table.constraints.some((c) => c.type === 'unique' && c.columns[0] === 'code'));
    assert.ok(table.constraints.some((c) => c.type === 'check' && c.name === 'price_not_negative'));
    const leading = table.indexes
      .map((i) => i.leadingColumn)
      .filter(Boolean)
      .sort();
    // The partial index and the expression index lead with nothing a filter could use.
    assert.deepEqual(leading, ['code', 'feeling', 'id', 'seen', 'small']);
  });

  test("a table's comment documents it, except the synthetic trips' seed marker, kept only for the DDL", async () => {
    assert.equal((await read('public.everything')).description, 'A column of every mapped type');
    const trips = await read('public.nyc_train_synced');
    assert.match(trips.comment ?? '', /^lakebase-api synthetic trips v\d+ rows=10$/);
    assert.equal(trips.description, null, 'no bookkeeping in the generated API description');
  });

  test('serial, foreign keys and quoted identifiers', async () => {
    const orders = await read('"Sales".orders');
    assert.equal(orders.columns[0]!.serial, true);
    const items = await read('"Sales"."Order Items"');
    assert.deepEqual(items.primaryKey, ['order', 'Line No']);
    const fk = items.constraints.find((c) => c.type === 'foreign key')!;
    assert.deepEqual(fk.references, { schema: 'Sales', table: 'orders', columns: ['id'], columnTypes: ['integer'] });
  });

  test('a missing table, or one the login may not read, is one line naming it', async () => {
    await assert.rejects(
      read('public.no_such_table'),
      (err: Error) => err instanceof TableNotReadable && /public\.no_such_table does not exist/.test(err.message) && !err.message.includes('\n'),
    );
    await database.admin.query(`DROP ROLE IF EXISTS add_table_reader; CREATE ROLE add_table_reader LOGIN PASSWORD 'reader-pw'`);
    const { default: pg } = await import('pg');
    const reader = new pg.Client({
      host: database.server.host,
      port: database.server.port,
      database: database.server.database,
      user: 'add_table_reader',
      password: 'reader-pw',
    });
    await reader.connect();
    try {
      await assert.rejects(
        readTable(reader, parseTableName('public.everything')),
        (err: Error) =>
          err instanceof TableNotReadable && err.message === 'Table public.everything exists but add_table_reader may not read it (no SELECT privilege)',
      );
    } finally {
      await reader.end();
    }
  });
});

describe('type mapping and plan', () => {
  test('every type maps exactly, loose ones warn, filters only on columns that lead an index', async () => {
    const plan = planTable(await read('public.everything'), { writes: true });
    const schema = (name: string) => plan.columns.find((c) => c.name === name)!.schema;
    assert.deepEqual(schema('id'), {
      type: 'integer',
      minimum: -Number.MAX_SAFE_INTEGER,
      maximum: Number.MAX_SAFE_INTEGER,
      description: '64-bit integer; accepted within ±(2^53 − 1), the integers every JSON client reads exactly. Identity (generated by default)',
    });
    assert.deepEqual(schema('small'), { type: 'integer', minimum: -32768, maximum: 32767, description: 'Default: 1' });
    assert.equal(schema('price').type, 'string');
    assert.equal(schema('price').pattern, '^-?\\d{1,8}(\\.\\d{1,2})?$');
    assert.equal(schema('code').maxLength, 12);
    assert.deepEqual(schema('ref').type, ['string', 'null']);
    assert.equal(schema('ref').format, 'uuid');
    assert.equal(schema('born').format, 'date');
    assert.equal(schema('seen_at').format, 'date-time');
    assert.equal(schema('raw').contentEncoding, 'base64');
    assert.deepEqual(schema('feeling').enum, ['sad', 'ok', 'happy', null]);
    assert.deepEqual(schema('scores').items, {
      type: ['string', 'null'],
      pattern: '^-?\\d{1,4}(\\.\\d{1,2})?$',
      description: 'Exact decimal as a string (numeric, precision 6, scale 2)',
    });
    assert.equal(schema('docb').type, undefined, 'any JSON');
    assert.equal(plan.columns.find((c) => c.name === 'price')!.output, 't."price"::text');
    assert.deepEqual(plan.warnings, ['column span: interval has no exact JSON mapping: served and accepted as its text form']);
    assert.deepEqual([...new Set(plan.filters.map((f) => f.column.name))], ['id', 'small', 'code', 'seen', 'feeling']);
    assert.deepEqual(plan.insertable.map((c) => c.name).includes('total'), false, 'a generated column is never written');
    assert.deepEqual(plan.requiredOnInsert, ['price']);
  });

  test('keys: uuid, composite with quoted names, a unique index without a primary key, no key at all', async () => {
    const uuid = planTable(await read('public.uuid_keyed'), { writes: true });
    assert.equal(uuid.operationIds.get, 'getUuidKeyedRow', 'a name that is not an English plural gets Row for its singular');
    assert.deepEqual(uuid.keyParams, ['id']);

    const items = planTable(await read('"Sales"."Order Items"'), { path: 'order-items', writes: true });
    assert.deepEqual(items.keyParams, ['order', 'line_no']);
    assert.deepEqual(items.operationIds, {
      count: 'countOrderItems',
      list: 'listOrderItems',
      get: 'getOrderItem',
      create: 'createOrderItems',
      update: 'updateOrderItem',
      delete: 'deleteOrderItem',
      updateWhere: 'updateOrderItems',
      deleteWhere: 'deleteOrderItems',
      replace: 'replaceOrderItem',
    });
    assert.equal(items.qualified, '"Sales"."Order Items"');

    const log = planTable(await read('public.events_log'), { writes: true });
    assert.equal(log.keySource, 'unique index events_log_seq');
    assert.equal(log.operationIds.get, undefined);
    assert.equal(log.writes, false);
    assert.match(log.notes.join('\n'), /no primary key: the list walks unique index events_log_seq/);

    const raw = planTable(await read('public.raw_readings'), { writes: false });
    assert.deepEqual(raw.operationIds, { count: 'countRawReadings' });
    assert.match(raw.notes[0]!, /no primary key and no unique index on NOT NULL columns: only the count is served/);
  });
});

describe('check constraints', () => {
  test('bounds, IN lists, NOT IN, lengths and domain checks are read from the catalog; other checks are named for sampling', async () => {
    const table = await read('public.rooms');
    const plan = planTable(table, { writes: true });
    const kinds = new Map(plan.columns.map((c) => [c.name, c.mapping.fixture.kind]));
    const { columns, unread } = readChecks(table, (name) => kinds.get(name)!);
    assert.deepEqual(Object.fromEntries(columns), {
      id: { min: 100, exclusiveMin: true },
      code: { minLength: 3, maxLength: 6 },
      capacity: { min: 1, max: 8 },
      kind: { values: ['single', 'double', 'suite'] },
      floor: { min: -2, max: 50, exclusiveMax: true },
      rate: { min: 10.5, exclusiveMin: true, max: 999.99 },
      size_class: { values: ['S', 'M', 'L'] },
      occupancy: { min: 0, max: 100 },
      opened: { min: '2000-01-01', max: '2030-12-31' },
      quiet: { not: [false] },
    });
    assert.deepEqual(unread.map((c) => [c.name, c.columns.sort()]).sort(), [
      ['big_or_cheap', ['capacity', 'rate']],
      ['rooms_label_check', ['label']],
      ['stay_order', ['checkin', 'checkout']],
    ]);
    // The values a generated row gets stay inside them, distinct where the range allows (UNIQUE).
    const fixture = (name: string) => withRules(plan.columns.find((c) => c.name === name)!.mapping.fixture, columns.get(name));
    const values = (name: string) => Array.from({ length: 12 }, (_, i) => fixtureValue(fixture(name), i + 1));
    assert.ok(values('capacity').every((v) => typeof v === 'number' && v >= 1 && v <= 8));
    assert.equal(new Set(values('capacity')).size, 8);
    assert.ok(values('code').every((v) => String(v).length >= 3 && String(v).length <= 6));
    assert.equal(new Set(values('code')).size, 12);
    assert.ok(values('rate').every((v) => Number(v) > 10.5 && Number(v) <= 999.99 && /^\d+\.\d{2}$/.test(String(v))));
    assert.ok(values('floor').every((v) => Number(v) >= -2 && Number(v) < 50));
    assert.ok(values('opened').every((v) => String(v) >= '2000-01-01' && String(v) <= '2030-12-31'));
    assert.deepEqual(new Set(values('kind')), new Set(['single', 'double', 'suite']));
    assert.deepEqual(new Set(values('quiet')), new Set([true]));
    assert.ok(values('id').every((v) => Number(v) > 100));
  });
});

describe('rows the generated tests make', () => {
  test('checks nobody read, a domain, a self reference and a populated parent: every row is found by drawing again', async () => {
    await database.admin.query(`
      CREATE DOMAIN zone_code AS text CHECK (VALUE IN ('A', 'B'));
      CREATE TABLE seats (
        id integer PRIMARY KEY,
        code text NOT NULL UNIQUE CHECK (code ~ '^[A-Z][0-9]+$'),
        row_no smallint NOT NULL CHECK (row_no % 3 = 0),
        zone zone_code,
        next_seat integer NOT NULL REFERENCES seats (id),
        trip bigint NOT NULL REFERENCES nyc_train_synced (id)
      )`);
    // The fixtures as a generated test would carry them for checks it could not read, on a table with no rows to sample.
    const column = (name: string, kind: string, sql: string, notNull = true) => ({
      name,
      fixture: { kind, sql },
      notNull,
      filledByDatabase: false,
      writable: true,
    });
    const rows = new TableRows(database.admin, {
      table: '"public"."seats"',
      columns: [
        column('id', 'int4', 'integer'),
        column('code', 'text', 'text'),
        column('row_no', 'int2', 'smallint'),
        column('zone', 'text', 'zone_code', false),
        column('next_seat', 'int4', 'integer'),
        column('trip', 'int8', 'bigint'),
      ],
      key: ['id'],
      foreignKeys: [
        { columns: ['next_seat'], parent: '"public"."seats"', parentColumns: ['id'] },
        { columns: ['trip'], parent: '"public"."nyc_train_synced"', parentColumns: ['id'] },
      ],
      uniqueKeys: [['id'], ['code']],
    });
    await rows.prepare();
    for (let i = 1; i <= 12; i++) assert.ok(await rows.insert(i), `row ${i}`);
    const { rows: stored } = await database.admin.query<{ n: string; trips: string; codes: string }>(
      'SELECT count(*) AS n, count(DISTINCT trip) AS trips, count(DISTINCT code) AS codes FROM seats',
    );
    assert.deepEqual(stored[0], { n: '12', trips: '10', codes: '12' }, 'parents that existed are referenced, not made up');
    // A body for the API: the database accepted it, then it was rolled back.
    const body = await rows.insert(13, { keep: false });
    assert.ok(body);
    assert.equal((await database.admin.query('SELECT 1 FROM seats WHERE id = $1', [body.id])).rowCount, 0);
  });
});

test('rows the database refuses become 4xx problems naming what was refused', async () => {
  const constraints = Object.fromEntries((await read('public.everything')).constraints.map((c) => [c.name, c.columns]));
  const refusal = async (sql: string, values: unknown[], fields: Record<string, unknown> = {}) => {
    const err = await database.admin.query(sql, values).then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.ok(err, `${sql} fails`);
    return refusedRow(mapDatabaseError(err), { constraints, fields, fallbackField: 'body' }) as { status: number; field?: string; message: string };
  };
  await database.admin.query(`INSERT INTO everything (id, price, code) VALUES (900001, 1, 'taken')`);
  const unique = await refusal(`INSERT INTO everything (price, code) VALUES (1, 'taken')`, []);
  assert.deepEqual([unique.status, unique.field], [409, 'code']);
  assert.match(unique.message, /same code already exists \(constraint everything_code_key\)/);
  const check = await refusal(`INSERT INTO everything (price) VALUES (-1)`, []);
  assert.deepEqual([check.status, check.field], [400, 'price']);
  assert.match(check.message, /price_not_negative/);
  const notNull = await refusal(`INSERT INTO everything (price) VALUES (NULL)`, []);
  assert.deepEqual([notNull.status, notNull.field], [400, 'price']);
  const domain = await refusal(`INSERT INTO everything (price, qty) VALUES (1, $1::positive_int)`, [0], { qty: 0 });
  assert.equal(domain.status, 400);
  const syntax = await refusal(`SELECT $1::uuid`, ['not-a-uuid'], { ref: 'not-a-uuid' });
  assert.deepEqual([syntax.status, syntax.field], [400, 'ref']);
  const range = await refusal(`SELECT $1::smallint`, ['70000'], { small: '70000' });
  assert.deepEqual([range.status, range.field], [400, 'small']);
  const fk = await refusal(`INSERT INTO "Sales"."Order Items" ("order", "Line No", "unit price") VALUES (424242, 1, 1)`, []);
  assert.deepEqual([fk.status, fk.field], [409, 'order']);
  // Anything else (here: SQL naming a table that is not there) stays what the service made of it.
  const other = await database.admin.query('SELECT * FROM no_such_table_here').catch((e: unknown) => mapDatabaseError(e));
  assert.equal(refusedRow(other, { constraints, fields: {}, fallbackField: 'body' }), other);
});

/** The working tree as it is (tracked and new files, not ignored ones), with node_modules shared by a symlink. */
function freshCopy(): string {
  const copy = mkdtempSync(join(tmpdir(), 'lakebase-api-add-table-'));
  const listed = spawnSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: ROOT, encoding: 'utf8' });
  assert.equal(listed.status, 0, listed.stderr);
  for (const file of listed.stdout.split('\0').filter(Boolean)) {
    if (!existsSync(join(ROOT, file))) continue; // deleted but not yet committed
    mkdirSync(dirname(join(copy, file)), { recursive: true });
    cpSync(join(ROOT, file), join(copy, file));
  }
  symlinkSync(join(ROOT, 'node_modules'), join(copy, 'node_modules'), 'dir');
  return copy;
}

/** `npm run add-table -- <args>` in `copy`, reading the fixture database. */
function commandIn(copy: string) {
  const { server } = database;
  const env = {
    ...process.env,
    PGHOST: server.host,
    PGPORT: String(server.port),
    PGUSER: server.user,
    PGPASSWORD: server.password,
    PGDATABASE: server.database,
    PGSSLMODE: 'disable',
  };
  return (args: string[]) => spawnSync(process.execPath, ['--import', 'tsx', 'tools/addTable/cli.ts', ...args], { cwd: copy, env, encoding: 'utf8' });
}

/** The generated tests of `paths` in `copy`, each starting its own embedded PostgreSQL. */
function runGeneratedTests(copy: string, paths: string[]) {
  // A test run of its own, not a child of this one (node:test tells its children by NODE_TEST_CONTEXT).
  const { NODE_TEST_CONTEXT: _child, ...ownEnv } = process.env;
  return spawnSync(
    process.execPath,
    ['--import', 'tsx', '--test', '--test-reporter=tap', '--test-concurrency=1', ...paths.map((p) => `test/functions/${p}.test.ts`)],
    { cwd: copy, encoding: 'utf8', env: { ...ownEnv, PGHOST: '', DATABASE_URL: '' }, maxBuffer: 64 * 1024 * 1024 },
  );
}

const failures = (tap: string) =>
  tap
    .split('\n')
    .filter((l) => /not ok|error:|expected|actual/.test(l))
    .slice(0, 40)
    .join('\n');

test('the command on a fresh copy of the project: files and registration, then typecheck and the generated tests pass', { timeout: 15 * 60_000 }, async () => {
  const copy = freshCopy();
  try {
    const run = commandIn(copy);

    const outputs: string[] = [];
    for (const args of FIXTURE_COMMANDS) {
      const result = run(args);
      assert.equal(result.status, 0, `add-table ${args.join(' ')}: ${result.stderr}`);
      outputs.push(result.stdout);
    }
    assert.match(outputs[0]!, /GET +\/everything\/\{id\} +getEverythingRow/);
    assert.match(outputs[0]!, /Warning: column span: interval has no exact JSON mapping/);
    assert.match(outputs[3]!, /DELETE +\/order-items\/\{order\}\/\{line_no\} +deleteOrderItem/);
    assert.match(outputs[6]!, /Note: public\.raw_readings has no primary key and no unique index/);

    const again = run(FIXTURE_COMMANDS[1]!);
    assert.equal(again.status, 1);
    assert.match(again.stderr, /Not overwriting functions\/uuidKeyedRowTable\.ts, .*Re-run with --force/);
    assert.equal(run([...FIXTURE_COMMANDS[1]!, '--force']).status, 0);
    const registry = readFileSync(join(copy, 'openapi/tables.ts'), 'utf8');
    assert.equal(registry.match(/uuidKeyedApi,/g)?.length, 1, 'registered once');
    // --path trips would write functions/getTrip.ts: a hand-written handler is never replaced, even with --force.
    const clash = run(['public.everything', '--path', 'trips', '--force']);
    assert.equal(clash.status, 1);
    assert.match(
      clash.stderr,
      /functions\/getTrip\.ts, test\/functions\/trips\.test\.ts exist and were not written by add-table for this table: choose another --path/,
    );
    assert.equal(readFileSync(join(copy, 'functions/getTrip.ts'), 'utf8'), readFileSync(join(ROOT, 'functions/getTrip.ts'), 'utf8'));

    const missing = run(['public.no_such_table']);
    assert.equal(missing.status, 1);
    assert.equal(missing.stderr.trim().split('\n').length, 1);
    assert.match(missing.stderr, /public\.no_such_table does not exist/);

    const typecheck = spawnSync(process.execPath, [join(copy, 'node_modules/typescript/bin/tsc'), '--noEmit', '-p', copy], { cwd: copy, encoding: 'utf8' });
    assert.equal(typecheck.status, 0, typecheck.stdout);

    // Written in the project's format and clean for its linter (`npm run lint`), warnings included:
    // every file the command wrote or edited (the registration lists too).
    const changed = (file: string) => !existsSync(join(ROOT, file)) || readFileSync(join(ROOT, file), 'utf8') !== readFileSync(join(copy, file), 'utf8');
    const written = ['functions', 'openapi', 'test/functions']
      .flatMap((dir) => readdirSync(join(copy, dir)).map((name) => `${dir}/${name}`))
      .filter((file) => (file.endsWith('.ts') || file.endsWith('.add-table.json')) && changed(file));
    assert.ok(written.includes('functions/getEverythingRow.ts') && written.includes('openapi/tables.ts'), written.join(', '));
    const biome = join(copy, 'node_modules/@biomejs/biome/bin/biome');
    const lint = spawnSync(process.execPath, [biome, 'check', '--error-on-warnings', ...written], { cwd: copy, encoding: 'utf8' });
    assert.equal(lint.status, 0, `biome check of the generated files:\n${lint.stdout}${lint.stderr}`);

    const paths = ['everything', 'uuid_keyed', 'orders', 'order-items', 'countries', 'events_log', 'raw_readings', 'rooms', 'bookings'];
    const tests = runGeneratedTests(copy, paths);
    const summary = /# pass (\d+)\n# fail (\d+)/.exec(tests.stdout);
    assert.equal(tests.status, 0, failures(tests.stdout));
    assert.ok(summary && Number(summary[1]) >= paths.length * 5 && summary[2] === '0', tests.stdout.slice(-2000));
  } finally {
    rmSync(copy, { recursive: true, force: true });
  }
});

test("--refresh follows a column added, dropped and retyped into the metadata, spec and test, never a handler nor the owner's narrowing", {
  timeout: 10 * 60_000,
}, async () => {
  const copy = freshCopy();
  try {
    await database.admin.query(`CREATE TABLE gadgets (
      id integer PRIMARY KEY,
      name text NOT NULL CHECK (length(name) >= 2),
      weight numeric(6,2),
      legacy_code text
    )`);
    const run = commandIn(copy);
    const never = run(['public.gadgets', '--refresh']);
    assert.equal(never.status, 1);
    assert.match(never.stderr, /public\.gadgets was never generated by add-table .*run npm run add-table -- public\.gadgets first/);

    assert.equal(run(['public.gadgets', '--write']).status, 0);
    const file = (name: string) => readFileSync(join(copy, name), 'utf8');
    const manifest = JSON.parse(file('openapi/gadgets.add-table.json')) as { columns: Array<{ name: string; type: string }> };
    assert.deepEqual(
      manifest.columns.map((c) => `${c.name} ${c.type}`),
      ['id integer', 'name text', 'weight numeric(6,2)', 'legacy_code text'],
    );
    const handlers = [
      'countGadgets',
      'listGadgets',
      'getGadget',
      'createGadgets',
      'updateGadget',
      'deleteGadget',
      'updateGadgets',
      'deleteGadgets',
      'replaceGadget',
    ].map((id) => `functions/${id}.ts`);
    // The owner's edit to a handler.
    const edited = file('functions/createGadgets.ts').replace(
      'export const createGadgets',
      '// Audit: every new gadget is logged by the owner.\nexport const createGadgets',
    );
    assert.notEqual(edited, file('functions/createGadgets.ts'));
    writeFileSync(join(copy, 'functions/createGadgets.ts'), edited);
    // The owner's narrowing, in the file that is theirs: weight is not filterable, name not orderable.
    const narrowing = (filterable: string) =>
      file('functions/gadgetDialect.ts').replace(
        /const narrowing: TableNarrowing<GadgetColumn> = \{[^}]*\};/,
        `const narrowing: TableNarrowing<GadgetColumn> = {\n  filterable: [${filterable}],\n  orderable: ['id', 'weight'],\n};`,
      );
    assert.notEqual(narrowing("'id', 'name', 'legacy_code'"), file('functions/gadgetDialect.ts'), 'the generated narrowing template');
    writeFileSync(join(copy, 'functions/gadgetDialect.ts'), narrowing("'id', 'name', 'legacy_code'"));
    handlers.push('functions/gadgetDialect.ts');
    const handlersBefore = handlers.map(file);

    await database.admin.query(`ALTER TABLE gadgets ADD COLUMN color text NOT NULL DEFAULT 'red' CHECK (color IN ('red', 'blue'));
      ALTER TABLE gadgets DROP COLUMN legacy_code;
      ALTER TABLE gadgets ALTER COLUMN weight TYPE integer USING round(weight)::integer`);
    const refreshed = run(['public.gadgets', '--refresh']);
    assert.equal(refreshed.status, 0, refreshed.stderr);
    assert.match(refreshed.stdout, /Refreshed public\.gadgets under \/gadgets: 3 column changes/);
    assert.match(refreshed.stdout, /column added: color \(text NOT NULL\)/);
    assert.match(refreshed.stdout, /column dropped: legacy_code \(text\)/);
    assert.match(refreshed.stdout, /column retyped: weight: numeric\(6,2\) → integer/);
    assert.match(refreshed.stdout, /functions\/createGadgets\.ts \(edited by you\)/);
    assert.deepEqual(handlers.map(file), handlersBefore, 'every handler, and the narrowing, byte for byte as it was');
    assert.match(refreshed.stdout, /functions\/gadgetDialect\.ts \(edited by you\)/);
    assert.match(refreshed.stdout, /functions\/gadgetDialect\.ts: filterable names column legacy_code that public\.gadgets no longer has: remove it/);
    assert.match(refreshed.stdout, /functions\/gadgetDialect\.ts: filterable lists its columns, so the new column color is not filterable/);
    assert.match(refreshed.stdout, /functions\/gadgetDialect\.ts: orderable lists its columns, so the new column color is not orderable/);
    // The typecheck names the column the table lost, where the owner listed it.
    const stale = spawnSync(process.execPath, [join(copy, 'node_modules/typescript/bin/tsc'), '--noEmit', '-p', copy], { cwd: copy, encoding: 'utf8' });
    assert.notEqual(stale.status, 0);
    assert.match(stale.stdout, /functions\/gadgetDialect\.ts\(\d+,\d+\): error TS\d+: Type '"legacy_code"' is not assignable to type 'GadgetColumn'/);
    writeFileSync(join(copy, 'functions/gadgetDialect.ts'), narrowing("'id', 'name'"));

    const metadata = file('functions/gadgetTable.ts');
    assert.match(metadata, /color: string;/);
    assert.match(metadata, /weight: number \| null;/);
    assert.doesNotMatch(metadata, /legacy_code/);
    const spec = file('openapi/gadgets.ts');
    assert.match(spec, /color: \{ type: 'string'/);
    assert.doesNotMatch(spec, /legacy_code/);
    const suite = file('test/functions/gadgets.test.ts');
    assert.match(suite, /name: 'color',\s+fixture: \{ kind: 'text', sql: 'text', values: \['red', 'blue'\] \}/);
    assert.match(suite, /name: 'weight',\s+fixture: \{ kind: 'int4'/);
    assert.doesNotMatch(suite, /legacy_code/);

    // Nothing changed since: the same command rewrites nothing; a hand edit of a machine-owned file is refused unless --force.
    const again = run(['public.gadgets', '--refresh']);
    assert.equal(again.status, 0, again.stderr);
    assert.match(again.stdout, /no column changes[\s\S]*nothing rewritten/);
    writeFileSync(join(copy, 'openapi/gadgets.ts'), `${spec}// my note\n`);
    const refused = run(['public.gadgets', '--refresh']);
    assert.equal(refused.status, 1);
    assert.match(refused.stderr, /openapi\/gadgets\.ts changed since add-table wrote them.*--refresh --force/);
    assert.equal(run(['public.gadgets', '--refresh', '--force']).status, 0);
    assert.equal(file('openapi/gadgets.ts'), spec);
    // Generated by an add-table that kept no manifest: said so, with the command that records one.
    const manifestText = file('openapi/gadgets.add-table.json');
    rmSync(join(copy, 'openapi/gadgets.add-table.json'));
    const unrecorded = run(['public.gadgets', '--refresh']);
    assert.equal(unrecorded.status, 1);
    assert.match(unrecorded.stderr, /public\.gadgets under \/gadgets was generated before --refresh existed .*--path gadgets --force once/);
    writeFileSync(join(copy, 'openapi/gadgets.add-table.json'), manifestText);

    // The refreshed project compiles with the untouched handlers, and the refreshed test passes.
    const typecheck = spawnSync(process.execPath, [join(copy, 'node_modules/typescript/bin/tsc'), '--noEmit', '-p', copy], { cwd: copy, encoding: 'utf8' });
    assert.equal(typecheck.status, 0, typecheck.stdout);
    // The narrowing is what the handlers serve: a filter on the new column, or on weight, is refused naming it; order by name too.
    const { GADGET_DIALECT } = (await import(pathToFileURL(join(copy, 'functions/gadgetDialect.ts')).href)) as { GADGET_DIALECT: PostgrestTable };
    for (const [search, field, named] of [
      ['color=eq.red', 'color', 'color'],
      ['weight=gt.1', 'weight', 'weight'],
      ['or=(id.eq.1,color.eq.blue)', 'or', 'color'],
      ['order=name', 'order', 'name'],
    ]) {
      assert.throws(
        () => parseForTable(GADGET_DIALECT, { search: search!, headers: {} }),
        (err: unknown) => err instanceof PostgrestError && err.status === 400 && err.code === 'PGRST100' && err.field === field && err.message.includes(named!),
        search,
      );
    }
    assert.doesNotThrow(() => parseForTable(GADGET_DIALECT, { search: 'name=eq.x&id=gt.1&order=weight.desc', headers: {} }));
    const tests = runGeneratedTests(copy, ['gadgets']);
    assert.equal(tests.status, 0, failures(tests.stdout));
    assert.ok(Number(/# pass (\d+)/.exec(tests.stdout)?.[1]) >= 5, tests.stdout.slice(-2000));
    // …and the generated suite checked it through postgrest-js.
    assert.match(tests.stdout, /ok \d+ - postgrest-js: a filter or order on a column the owner's narrowing leaves out is a 400 PGRST100 naming it\n/);

    // A table generated before the narrowing had a file of its own: --refresh writes it once and names the handlers to repoint.
    rmSync(join(copy, 'functions/gadgetDialect.ts'));
    const collection = ['listGadgets', 'createGadgets', 'updateGadgets', 'deleteGadgets', 'replaceGadget'].map((id) => `functions/${id}.ts`);
    for (const handler of collection) writeFileSync(join(copy, handler), file(handler).replace("from './gadgetDialect.ts'", "from './gadgetTable.ts'"));
    const older = run(['public.gadgets', '--refresh']);
    assert.equal(older.status, 0, older.stderr);
    assert.match(older.stdout, /Wrote \(new, yours from now on\):\n {2}functions\/gadgetDialect\.ts\n/);
    for (const handler of collection) {
      assert.ok(older.stdout.includes(`Note: ${handler} imports GADGET_DIALECT from ./gadgetTable.ts: it now lives in ./gadgetDialect.ts`), older.stdout);
    }
    assert.match(file('functions/gadgetDialect.ts'), /export const GADGET_DIALECT: PostgrestTable = \{ \.\.\.GADGET_CATALOG, \.\.\.narrowing \};/);
  } finally {
    rmSync(copy, { recursive: true, force: true });
  }
});
