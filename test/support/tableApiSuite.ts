import assert from 'node:assert/strict';
import http2 from 'node:http2';
import { after, before, describe, test } from 'node:test';
import type pg from 'pg';
import { quoteIdent } from '../../lib/db/sqlIdentifiers.ts';
import type { ApiResponse } from './api.ts';
import { hostileRequests } from './hostileRequests.ts';
import { listenOnLoopback } from './httpHarness.ts';
import { sendRaw } from './rawHttp.ts';
import { startTestDatabase, startTestService, type TestDatabase, type TestService } from './testService.ts';
import { expressTransport, fetchTransport, lambdaV1Transport, lambdaV2Transport, type Exchange } from './transports.ts';

/**
 * The checks every table served by `npm run add-table` gets, driven by what the generator read
 * from the catalog (the generated test/functions/<path>.test.ts passes it in): the table is
 * recreated from its DDL in a throw-away embedded PostgreSQL, filled with rows that satisfy its
 * types and constraints, and every generated operation is called through the real router, each
 * response checked against the OpenAPI document.
 */
export interface FixtureType {
  kind: string;
  sql: string;
  maxLength?: number;
  precision?: number;
  scale?: number;
  labels?: string[];
  element?: FixtureType;
  /** A value of a type without an exact mapping, in its text form, read from the table. */
  sample?: string | null;
}

export interface GeneratedTable {
  /** `"schema"."table"` */
  table: string;
  path: string;
  ddl: string[];
  columns: Array<{ name: string; fixture: FixtureType; notNull: boolean; filledByDatabase: boolean; writable: boolean }>;
  key: string[];
  keyParams: string[] | null;
  filters: Array<{ param: string; column: string; operator: '=' | '>' | '>=' | '<' | '<=' }>;
  foreignKeys: Array<{ columns: string[]; parent: string; parentColumns: string[] }>;
  uniqueKeys: string[][];
  updatable: string[];
  operations: {
    list?: string;
    count: string;
    get?: string;
    create?: string;
    update?: string;
    delete?: string;
    updateWhere?: string;
    deleteWhere?: string;
    replace?: string;
  };
}

const ROWS = 12;

/** Query parameters PostgREST's dialect reserves: a column of the same name is not filterable by it. */
const DIALECT_PARAMETERS = new Set(['select', 'order', 'limit', 'offset', 'columns', 'on_conflict', 'and', 'or']);

type Row = Record<string, unknown>;

const pad = (n: number, width: number) => String(n).padStart(width, '0');

/** A valid value of `type` for the i-th generated row, as the API sends and accepts it. */
export function fixtureValue(type: FixtureType, i: number): unknown {
  const day = Date.UTC(2024, 0, 1) + i * 86_400_000;
  switch (type.kind) {
    case 'int2':
      return (i * 7) % 32_000;
    case 'int4':
      return i * 7;
    case 'int8':
      return i * 1_000_003;
    case 'numeric': {
      if (type.precision === undefined || type.scale === undefined) return `${i * 7}.25`;
      const whole = type.precision > type.scale ? String((i * 7) % 10 ** Math.min(type.precision - type.scale, 6)) : '0';
      return type.scale > 0 ? `${whole}.${pad((i * 13) % 10 ** Math.min(type.scale, 6), type.scale)}` : whole;
    }
    case 'float4':
      return i + 0.5;
    case 'float8':
      return i * 1.25 + 0.125;
    case 'bool':
      return i % 2 === 0;
    case 'text':
      return `text ${i}`;
    case 'varchar': {
      const text = `v${i}`;
      return type.maxLength !== undefined && text.length > type.maxLength ? String(i).slice(-type.maxLength) : text;
    }
    case 'bpchar':
      return pad(i, type.maxLength ?? 1).slice(-(type.maxLength ?? 1));
    case 'uuid':
      return `00000000-0000-4000-8000-${i.toString(16).padStart(12, '0')}`;
    case 'date':
      return new Date(day).toISOString().slice(0, 10);
    case 'timestamp':
      return new Date(day + i * 1000).toISOString().slice(0, 19);
    case 'timestamptz':
      return `${new Date(day + i * 1000).toISOString().slice(0, 19)}+00:00`;
    case 'time':
      return new Date((i * 3_737_000) % 86_400_000).toISOString().slice(11, 19);
    case 'timetz':
      return `${new Date((i * 3_737_000) % 86_400_000).toISOString().slice(11, 19)}+00`;
    case 'json':
      return { n: i, tags: ['a', String(i)] };
    case 'bytea':
      return Buffer.from([i & 255, (i >> 8) & 255, 7, 42]).toString('base64');
    case 'enum':
      return type.labels![i % type.labels!.length];
    case 'array':
      return [fixtureValue(type.element!, i), fixtureValue(type.element!, i + 1)];
    default:
      return type.sample ?? null;
  }
}

/** SQL reading parameter `$n` as the column's type (what the generated handlers do). */
function sqlInput(type: FixtureType, n: number): string {
  if (type.kind === 'bytea') return `decode($${n}, 'base64')`;
  return `$${n}::${type.sql}`;
}

const toParam = (type: FixtureType, value: unknown) => (type.kind === 'json' && value !== null ? JSON.stringify(value) : value);

/** Values compare as what they mean: an instant, not its offset's spelling. */
function canonical(type: FixtureType, value: unknown): unknown {
  if (value === null || value === undefined) return null;
  if (type.kind === 'timestamptz') return Date.parse(String(value));
  // The test's own pool reads bigint as text; the API sends JSON integers.
  if (type.kind === 'int2' || type.kind === 'int4' || type.kind === 'int8') return Number(value);
  if (type.kind === 'array' && Array.isArray(value)) return value.map((v) => canonical(type.element!, v));
  return value;
}

export function describeTableApi(spec: GeneratedTable): void {
  const ops = spec.operations;
  const keyColumns = spec.key.map((name) => spec.columns.find((c) => c.name === name)!);
  const keyOf = (row: Row) => JSON.stringify(keyColumns.map((c) => canonical(c.fixture, row[c.name])));
  const keyOrder = spec.key.map((k) => `t.${quoteIdent(k)}`).join(', ') || 'ctid';

  let database: TestDatabase;
  let service: TestService;
  /** The rows as inserted (what the API must give back), by key. */
  const inserted = new Map<string, Row>();

  async function checksum(admin: pg.Pool): Promise<string> {
    const { rows } = await admin.query<{ sum: string }>(
      `SELECT md5(coalesce(string_agg(t::text, ',' ORDER BY ${keyOrder}), '')) AS sum FROM ${spec.table} AS t`,
    );
    return rows[0]!.sum;
  }

  /** Inserts the i-th generated row (and the parent rows its foreign keys need); false when a constraint refused it. */
  async function insertRow(admin: pg.Pool, i: number): Promise<Row | undefined> {
    const row: Row = {};
    for (const column of spec.columns) {
      if (!column.writable || column.filledByDatabase) continue;
      // Nullable columns outside keys are null now and then, so null travels too.
      const keyLike = spec.uniqueKeys.some((k) => k.includes(column.name)) || spec.foreignKeys.some((f) => f.columns.includes(column.name));
      row[column.name] = !column.notNull && !keyLike && i % 5 === 4 ? null : fixtureValue(column.fixture, i);
    }
    for (const fk of spec.foreignKeys) {
      const values = fk.columns.map((c) => row[c]);
      if (values.some((v) => v === null || v === undefined)) continue;
      const types = fk.columns.map((c) => spec.columns.find((col) => col.name === c)!.fixture);
      await admin
        .query(
          `INSERT INTO ${fk.parent} (${fk.parentColumns.map(quoteIdent).join(', ')}) VALUES (${types.map((t, n) => sqlInput(t, n + 1)).join(', ')}) ON CONFLICT DO NOTHING`,
          values.map((v, n) => toParam(types[n]!, v)),
        )
        .catch(() => undefined); // a parent of our own table (a self reference) needs no stand-in row
    }
    const names = Object.keys(row);
    const types = names.map((name) => spec.columns.find((c) => c.name === name)!.fixture);
    const returning = spec.key.length ? `RETURNING ${spec.key.map(quoteIdent).join(', ')}` : '';
    const text = names.length
      ? `INSERT INTO ${spec.table} (${names.map(quoteIdent).join(', ')}) VALUES (${types.map((t, n) => sqlInput(t, n + 1)).join(', ')}) ${returning}`
      : `INSERT INTO ${spec.table} DEFAULT VALUES ${returning}`;
    try {
      const { rows } = await admin.query(
        text,
        names.map((name, n) => toParam(types[n]!, row[name])),
      );
      return { ...row, ...rows[0] };
    } catch (err) {
      if (/^2[23]/.test(String((err as { code?: string }).code))) return undefined;
      throw err;
    }
  }

  describe(`${spec.path} (generated by npm run add-table from ${spec.table})`, () => {
    before(async () => {
      database = await startTestDatabase(10);
      for (const statement of spec.ddl) await database.admin.query(statement);
      for (let i = 1; inserted.size < ROWS && i < ROWS * 20; i++) {
        const row = await insertRow(database.admin, i);
        // Without a key the rows are told apart by the order they were made in.
        if (row) inserted.set(spec.key.length ? keyOf(row) : String(i), row);
      }
      assert.ok(inserted.size >= 3, `only ${inserted.size} generated rows satisfied ${spec.table}'s constraints: edit fixtureValue inputs in this test`);
      service = await startTestService({ database });
    });
    after(async () => {
      await service?.close();
      await database?.stop();
    });

    /** A response row matches the row inserted with the same key, column by column. */
    function assertRoundTrip(item: Row): void {
      const expected = inserted.get(keyOf(item));
      assert.ok(expected, `row ${keyOf(item)} was inserted by this test`);
      for (const column of spec.columns) {
        if (!(column.name in expected) || column.fixture.kind === 'text form') continue;
        assert.deepEqual(canonical(column.fixture, item[column.name]), canonical(column.fixture, expected[column.name]), `${column.name} round-trips`);
      }
    }

    /**
     * Every row the collection answers for `query` (PostgREST's dialect), `limit` at a time: following
     * `Link: <…>; rel="next"` (a one-column key), else the next offset.
     */
    async function walk(query: string, limit: number): Promise<Row[]> {
      const items: Row[] = [];
      let url = `${spec.path}?limit=${limit}${query}`;
      for (let pages = 0; pages < 1000; pages++) {
        const res: ApiResponse = await service.api.get(url);
        assert.equal(res.status, 200, res.text);
        assert.ok(Array.isArray(res.body) && res.body.length <= limit);
        items.push(...(res.body as Row[]));
        const next = /^<([^>]+)>; rel="next"$/.exec(res.headers.link ?? '')?.[1];
        if (next) url = next;
        else if (res.body.length === limit) url = `${spec.path}?limit=${limit}${query}&offset=${items.length}`;
        else return items;
      }
      throw new Error('the pages never ended');
    }

    async function sqlCount(where = '', values: unknown[] = []): Promise<number> {
      const { rows } = await database.admin.query<{ n: string }>(`SELECT count(*) AS n FROM ${spec.table} AS t ${where}`, values);
      return Number(rows[0]!.n);
    }

    if (ops.list) {
      test('following next_cursor visits every row exactly once, in key order, every value as inserted', async () => {
        const items = await walk('', 5);
        assert.equal(items.length, await sqlCount());
        assert.equal(new Set(items.map(keyOf)).size, items.length, 'no row twice');
        const { rows } = await database.admin.query<Row>(
          `SELECT ${spec.key.map((k) => `t.${quoteIdent(k)}`).join(', ')} FROM ${spec.table} AS t ORDER BY ${keyOrder}`,
        );
        const inKeyOrder = rows.map((row) => keyColumns.map((c) => String(row[c.name])).join('|'));
        const listed = items.map((row) => keyColumns.map((c) => String(row[c.name])).join('|'));
        if (keyColumns.every((c) => ['int2', 'int4', 'int8', 'text', 'varchar', 'uuid', 'enum', 'bpchar'].includes(c.fixture.kind))) {
          assert.deepEqual(listed, inKeyOrder, 'the list follows the key order');
        }
        for (const item of items) assertRoundTrip(item);
      });

      test("grammar the dialect refuses is a 400 with PostgREST's code, naming the parameter", async () => {
        for (const [query, field, code] of [
          ['no_such_column=eq.1', 'no_such_column', '42703'],
          [`${encodeURIComponent(spec.columns[0]!.name)}=zz.1`, spec.columns[0]!.name, 'PGRST100'],
          ['or=(a.eq.1', 'or', 'PGRST100'],
          ['select=no_such_column', 'select', '42703'],
        ]) {
          const res = await service.api.get(`${spec.path}?${query}`);
          assert.equal(res.status, 400, `${query}: ${res.text}`);
          assert.equal(res.body.field, field);
          assert.equal(res.body.code, code);
        }
      });

      test('reads are cached: the second identical list is a cache hit', async () => {
        const first = await service.api.get(`${spec.path}?limit=3`);
        const second = await service.api.get(`${spec.path}?limit=3`);
        assert.equal(second.headers['x-cache'], 'HIT');
        assert.equal(second.text, first.text);
      });
    }

    test('count is the number of rows', async () => {
      const res = await service.api.get(`${spec.path}/count`);
      assert.equal(res.status, 200, res.text);
      assert.equal(res.body.count, await sqlCount());
    });

    test('each filter selects exactly the rows its condition selects in SQL, alone and with the cursor', async () => {
      const sample = [...inserted.values()][2] ?? [...inserted.values()][0]!;
      for (const filter of spec.filters) {
        const column = spec.columns.find((c) => c.name === filter.column)!;
        const value = sample[filter.column];
        if (value === null || value === undefined) continue;
        const expected = await sqlCount(`WHERE t.${quoteIdent(filter.column)} ${filter.operator} ${sqlInput(column.fixture, 1)}`, [
          toParam(column.fixture, value),
        ]);
        const query = `&${encodeURIComponent(filter.param)}=${encodeURIComponent(String(value))}`;
        const count = await service.api.get(`${spec.path}/count?${query.slice(1)}`);
        assert.equal(count.status, 200, count.text);
        assert.equal(count.body.count, expected, `${filter.param}=${String(value)}`);
        // A column named like one of the dialect's own parameters (order, select, …) cannot be filtered by name, as in PostgREST.
        if (ops.list && !DIALECT_PARAMETERS.has(filter.column)) {
          const dialectOperator = { '=': 'eq', '>': 'gt', '>=': 'gte', '<': 'lt', '<=': 'lte' }[filter.operator];
          const items = await walk(`&${encodeURIComponent(filter.column)}=${encodeURIComponent(`${dialectOperator}.${String(value)}`)}`, 2);
          assert.equal(items.length, expected, `${filter.param} through the list`);
          for (const item of items) assertRoundTrip(item);
        }
      }
    });

    test('an undeclared filter is a 400 naming it', async () => {
      for (const name of ['no_such_column', ...spec.columns.map((c) => c.name).filter((n) => !spec.filters.some((f) => f.param === n))].slice(0, 4)) {
        const res = await service.api.get(`${spec.path}/count?${encodeURIComponent(name)}=1`);
        assert.equal(res.status, 400, res.text);
        assert.equal(res.body.field, name);
      }
    });

    if (ops.get) {
      test('get by key returns the listed row; an absent key is a 404', async () => {
        for (const row of inserted.values()) {
          const res = await service.api.get(rowPath(row));
          assert.equal(res.status, 200, res.text);
          assertRoundTrip(res.body);
        }
        // A key no row has (a short char(n) key repeats generated values, so look for one).
        let j = 9_000_001;
        const keyAt = (n: number) => Object.fromEntries(keyColumns.map((c) => [c.name, fixtureValue(c.fixture, n)]));
        while (inserted.has(keyOf(keyAt(j)))) j++;
        const absent = await service.api.get(rowPath(keyAt(j)));
        assert.equal(absent.status, 404, absent.text);
      });

      test('a malformed key is a 400 naming the parameter', async () => {
        const malformed = keyColumns.findIndex((c) => !['text', 'varchar', 'bpchar', 'text form'].includes(c.fixture.kind));
        if (malformed === -1) return; // any text is a valid key
        const parts = keyColumns.map((c, i) => (i === malformed ? 'not%20a%20key' : encodeURIComponent(String(fixtureValue(c.fixture, 1)))));
        const res = await service.api.get(`${spec.path}/${parts.join('/')}`);
        assert.equal(res.status, 400, res.text);
        assert.equal(res.body.field, spec.keyParams![malformed]);
      });
    }

    function rowPath(row: Row): string {
      return `${spec.path}/${keyColumns.map((c) => encodeURIComponent(String(row[c.name]))).join('/')}`;
    }

    /** A new row's body: every writable column the database does not fill. */
    function newRow(i: number): Row {
      const row: Row = {};
      for (const column of spec.columns) {
        if (column.writable && !column.filledByDatabase) row[column.name] = fixtureValue(column.fixture, i);
      }
      return row;
    }

    if (ops.create) {
      test('POST creates (201, the row with Prefer: return=representation), GET reads it back, PATCH changes it, DELETE removes it; cached counts follow', async () => {
        const before = (await service.api.get(`${spec.path}/count`)).body.count as number;
        let created: ApiResponse | undefined;
        let i = 5000;
        for (; i < 5200; i++) {
          const row = newRow(i);
          for (const fk of spec.foreignKeys) {
            await insertParent(fk, row);
          }
          created = await service.api.send('POST', spec.path, { body: row, headers: { prefer: 'return=representation' } });
          if (created.status === 201) break;
          assert.ok(created.status >= 400 && created.status < 500, created.text);
        }
        assert.equal(created?.status, 201, created?.text);
        const stored = (created.body as Row[])[0]!;
        const location = rowPath(stored);
        inserted.set(keyOf(stored), stored);
        assert.equal((await service.api.get(`${spec.path}/count`)).body.count, before + 1, 'the create evicted the cached count');
        const read = await service.api.get(location);
        assert.equal(read.status, 200);
        assert.deepEqual(read.body, stored);

        if (ops.update) {
          const column = spec.columns.find(
            (c) => spec.updatable.includes(c.name) && !spec.foreignKeys.some((f) => f.columns.includes(c.name)) && c.fixture.kind !== 'text form',
          );
          if (column) {
            for (let j = i + 1; j < i + 40; j++) {
              const patched = await service.api.send('PATCH', location, { body: { [column.name]: fixtureValue(column.fixture, j) } });
              if (patched.status !== 200) continue;
              assert.deepEqual(canonical(column.fixture, patched.body[column.name]), canonical(column.fixture, fixtureValue(column.fixture, j)));
              const reread = await service.api.get(location);
              assert.deepEqual(reread.body, patched.body, 'the update evicted the cached row');
              inserted.set(keyOf(patched.body), patched.body);
              break;
            }
          }
          const empty = await service.api.send('PATCH', location, { body: {} });
          assert.equal(empty.status, 400);
        }
        if (ops.delete) {
          assert.equal((await service.api.send('DELETE', location)).status, 204);
          inserted.delete(keyOf(stored));
          assert.equal((await service.api.get(location)).status, 404);
          assert.equal((await service.api.send('DELETE', location)).status, 404);
        }
      });

      test('a row the database refuses is a 4xx naming what was refused, and the table is unchanged', async () => {
        const checksumBefore = await checksum(database.admin);
        const existing = (await service.api.get(`${spec.path}?limit=1`)).body[0] as Row;
        const duplicate: Row = {};
        for (const column of spec.columns) if (column.writable && column.name in existing) duplicate[column.name] = existing[column.name];
        const unique = spec.uniqueKeys.find((columns) =>
          columns.every((c) => spec.columns.find((col) => col.name === c)?.writable && duplicate[c] !== undefined && duplicate[c] !== null),
        );
        if (unique) {
          const res = await service.api.post(spec.path, duplicate);
          assert.equal(res.status, 409, res.text);
          assert.ok(unique.includes(res.body.field), `field ${res.body.field} is one of ${unique.join(', ')}`);
        }
        for (const fk of spec.foreignKeys) {
          const orphan = { ...newRow(7000) };
          for (const c of fk.columns) orphan[c] = fixtureValue(spec.columns.find((col) => col.name === c)!.fixture, 8_000_001);
          const res = await service.api.post(spec.path, orphan);
          assert.ok(res.status === 409 || res.status === 400, res.text);
        }
        assert.equal(await checksum(database.admin), checksumBefore);
      });
    }

    async function insertParent(fk: GeneratedTable['foreignKeys'][number], row: Row): Promise<void> {
      const types = fk.columns.map((c) => spec.columns.find((col) => col.name === c)!.fixture);
      await database.admin
        .query(
          `INSERT INTO ${fk.parent} (${fk.parentColumns.map(quoteIdent).join(', ')}) VALUES (${types.map((t, n) => sqlInput(t, n + 1)).join(', ')}) ON CONFLICT DO NOTHING`,
          fk.columns.map((c, n) => toParam(types[n]!, row[c])),
        )
        .catch(() => undefined);
    }

    test('every runtime adapter (Express, fetch, Lambda v2 and v1, h2c) gives the same answers', async () => {
      const transports = [expressTransport, fetchTransport, lambdaV2Transport, lambdaV1Transport].map((make) => make(service.ctx));
      const first = [...inserted.values()][0]!;
      const urls = [`${spec.path}/count`, `${spec.path}/count?no_such_filter=1`];
      if (ops.list) urls.push(`${spec.path}?limit=3`, `${spec.path}?no_such_column=eq.1`);
      if (ops.get) urls.push(rowPath(first));
      const http = await listenOnLoopback(service);
      const session = http2.connect(http.baseUrl);
      const overH2c = (url: string) =>
        new Promise<Exchange>((resolve, reject) => {
          const stream = session.request({ ':method': 'GET', ':path': url });
          let status = 0;
          let text = '';
          stream.setEncoding('utf8');
          stream.on('response', (headers) => {
            status = Number(headers[':status']);
          });
          stream.on('data', (chunk: string) => {
            text += chunk;
          });
          stream.on('end', () => resolve({ status, headers: {}, text }));
          stream.on('error', reject);
        });
      const answer = (exchange: Exchange) => {
        const body = JSON.parse(exchange.text) as Record<string, unknown>;
        delete body.request_id;
        return { status: exchange.status, body };
      };
      try {
        for (const url of urls) {
          const answers = [];
          for (const transport of transports) {
            const exchange = await transport.send('GET', url);
            service.contract.check('GET', url, exchange);
            answers.push({ via: transport.name, ...answer(exchange) });
          }
          answers.push({ via: 'h2c', ...answer(await overH2c(url)) });
          for (const other of answers.slice(1))
            assert.deepEqual({ ...other, via: '' }, { ...answers[0]!, via: '' }, `${other.via} differs from ${answers[0]!.via} for ${url}`);
        }
      } finally {
        session.close();
        await http.close();
      }
    });

    test('hostile requests to the generated operations: never a 5xx, no write accepted, the table unchanged', async () => {
      // The documented example key names no row, so a write a hostile request reaches is refused.
      if (ops.get) {
        const example = (
          service.router.document.paths![`${spec.path}/${spec.keyParams!.map((p) => `{${p}}`).join('/')}`]!.get!.parameters as Array<{ example?: unknown }>
        ).map((p) => p.example);
        await database.admin.query(
          `DELETE FROM ${spec.table} AS t WHERE ${keyColumns.map((c, n) => `t.${quoteIdent(c.name)} = ${sqlInput(c.fixture, n + 1)}`).join(' AND ')}`,
          example.map((v, n) => toParam(keyColumns[n]!.fixture, v)),
        );
      }
      const checksumBefore = await checksum(database.admin);
      const http = await listenOnLoopback(service);
      try {
        const requests = hostileRequests(service.router.document, service.ctx.config).filter(
          (r) => r.template === spec.path || r.template?.startsWith(`${spec.path}/`),
        );
        assert.ok(requests.length > 10, `${requests.length} hostile requests`);
        const failures: string[] = [];
        let next = 0;
        await Promise.all(
          Array.from({ length: 8 }, async () => {
            while (next < requests.length) {
              const request = requests[next++]!;
              const res = await sendRaw(http.port, request.bytes, 5000);
              const accepted = res.status < 400 && !['GET', 'HEAD', 'OPTIONS'].includes(request.method.toUpperCase());
              if (res.status >= 500 || res.status === 0 || accepted)
                failures.push(`[${request.category}] ${request.description} → ${res.status} ${res.body.slice(0, 160)}`);
            }
          }),
        );
        assert.deepEqual(failures.slice(0, 20), []);
      } finally {
        await http.close();
      }
      assert.equal(await checksum(database.admin), checksumBefore, 'the table is unchanged');
    });
  });
}
