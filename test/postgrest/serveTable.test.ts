import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';
import { loadConfig } from '../../lib/ground/config.ts';
import { createContext } from '../../lib/context.ts';
import type { Context } from '../../lib/http/serviceContext.ts';
import { ApiError } from '../../lib/errors.ts';
import type { PostgrestError } from '../../lib/postgrest/postgrestError.ts';
import { readTable, type WriteMethod, writeTable } from '../../lib/postgrest/serveTable.ts';
import { captureLogs } from '../support/logCapture.ts';
import { startTestDatabase, type TestDatabase } from '../support/testService.ts';
import { GADGETS, GADGETS_DDL, tableChecksum } from './gadgetsTable.ts';

/**
 * The dialect end to end below HTTP: parse, check, compile, run on a real Postgres. Each read's
 * rows are compared with what a hand-written SQL query over the same table says.
 */
let database: TestDatabase;
let ctx: Context;
before(async () => {
  database = await startTestDatabase(10);
  await database.admin.query(GADGETS_DDL);
  ctx = await createContext({
    config: loadConfig({ DB_POOL_SIZE: '2', DB_MAX_OVERFLOW: '1' }),
    logger: captureLogs().logger,
    version: 'test',
    warm: false,
    target: { ...database.server, mode: 'postgres', ssl: false, description: 'test', close: async () => undefined },
  });
});
after(async () => {
  await ctx?.close();
  await database?.stop();
});

const read = (search: string, headers: Record<string, string> = {}) => readTable(ctx.db, GADGETS, { search, headers });
const write = (method: WriteMethod, search: string, body: unknown, headers: Record<string, string> = {}) =>
  writeTable(ctx.db, GADGETS, method, { search, headers }, body);

async function idsOf(search: string, headers: Record<string, string> = {}): Promise<number[]> {
  const response = await read(search, headers);
  return (JSON.parse(response.body ?? '[]') as Array<{ id: number }>).map((row) => Number(row.id));
}

async function sqlIds(where: string, order = 'id'): Promise<number[]> {
  const { rows } = await database.admin.query<{ id: string }>(`SELECT id FROM public.gadgets AS g WHERE ${where} ORDER BY ${order}`);
  return rows.map((row) => Number(row.id));
}

async function refusalOf(run: () => Promise<unknown>): Promise<ApiError> {
  try {
    await run();
  } catch (err) {
    assert.ok(err instanceof ApiError, `expected an ApiError, got ${String(err)}`);
    return err;
  }
  assert.fail('expected a refusal');
}

describe('reads agree with SQL', () => {
  const cases: Array<[string, string]> = [
    ['id=eq.3', 'id = 3'],
    ['id=neq.3', 'id <> 3'],
    ['id=gte.15&id=lt.18', 'id >= 15 AND id < 18'],
    ['name=like.*dget*', "name LIKE '%dget%'"],
    ['name=ilike.G*', "name ILIKE 'g%'"],
    ['name=match.^w.*1', "name ~ '^w.*1'"],
    ['name=imatch.^GIZ', "name ~* '^giz'"],
    ['id=in.(1,2,3,99)', 'id IN (1, 2, 3)'],
    ['id=not.in.(1,2)', 'id NOT IN (1, 2)'],
    ['active=is.true', 'active IS TRUE'],
    ['active=not.is.null', 'active IS NOT NULL'],
    ['price=is.null', 'price IS NULL'],
    ['qty=isdistinct.3', 'qty IS DISTINCT FROM 3'],
    ['tags=cs.{red}', "tags @> '{red}'"],
    ['tags=cd.{red,blue,green}', "tags <@ '{red,blue,green}'"],
    ['tags=ov.{x,green}', "tags && '{x,green}'"],
    ['meta=cs.{"size":"L"}', `meta @> '{"size":"L"}'`],
    ['meta->>size=eq.M', "meta->>'size' = 'M'"],
    ['meta->n=gt.15', "meta->'n' > '15'::jsonb"],
    ['meta->nested->>even=eq.true', "meta->'nested'->>'even' = 'true'"],
    ['doc=fts.gadget', "doc @@ to_tsquery('gadget')"],
    ['name=fts(english).widgets', "to_tsvector('english', name) @@ to_tsquery('english', 'widgets')"],
    ['name=plfts.gizmo 6', "to_tsvector(name) @@ plainto_tsquery('gizmo 6')"],
    ['name=phfts(english).sprocket 3', "to_tsvector('english', name) @@ phraseto_tsquery('english', 'sprocket 3')"],
    ['name=wfts.gadget or widget', "to_tsvector(name) @@ websearch_to_tsquery('gadget or widget')"],
    ['or=(id.lt.3,id.gt.18)', 'id < 3 OR id > 18'],
    ['and=(id.gt.2,or(id.eq.5,id.eq.7,name.eq."gadget 8"))', "id > 2 AND (id = 5 OR id = 7 OR name = 'gadget 8')"],
    ['not.or=(id.lt.10,id.gt.12)', 'NOT (id < 10 OR id > 12)'],
    ['or=(meta->>size.eq.S,not.and(qty.gte.3,active.is.false))', "meta->>'size' = 'S' OR NOT (qty >= 3 AND active IS FALSE)"],
    ['name=like(any).{g*,w*}', "name LIKE ANY(ARRAY['g%', 'w%'])"],
    ['id=eq(any).{1,5}', 'id = ANY(ARRAY[1, 5])'],
    ['made=gt.2024-01-15T00:00:00Z', "made > '2024-01-15T00:00:00Z'"],
    ['code=eq.c4ca4238-a0b9-2382-0dcc-509a6f75849b', "code = 'c4ca4238a0b923820dcc509a6f75849b'::uuid"],
    ['price=gt.10.5', 'price > 10.5'],
  ];
  for (const [search, where] of cases) {
    test(`${search}  ≡  WHERE ${where}`, async () => {
      assert.deepEqual(await idsOf(search), await sqlIds(where));
    });
  }

  test('order: several keys, desc, nulls placement', async () => {
    assert.deepEqual(await idsOf('order=qty.desc.nullslast,id.desc'), await sqlIds('true', 'qty DESC NULLS LAST, id DESC'));
    assert.deepEqual(await idsOf('order=active.nullsfirst,meta->>size.desc,id'), await sqlIds('true', "active NULLS FIRST, meta->>'size' DESC, id"));
  });

  test('select: columns, aliases, casts, JSON paths; values as the wire form', async () => {
    const response = await read('select=ident:id,price,cost:price::float8,meta->>size,meta->nested,made,tags&id=eq.2');
    assert.deepEqual(JSON.parse(response.body ?? ''), [
      { ident: 2, price: '2.50', cost: 2.5, size: 'L', nested: { even: true }, made: '2024-01-03T00:00:00+00:00', tags: ['blue', 'x'] },
    ]);
    const plain = await read('select=id,price,note&id=eq.4');
    assert.deepEqual(JSON.parse(plain.body ?? ''), [{ id: 4, price: '5.00', note: 'none' }]);
  });

  test('paging: limit/offset and Range; Prefer: count=exact gives Content-Range and 206', async () => {
    const page = await read('order=id&limit=5&offset=5', { prefer: 'count=exact' });
    assert.equal(page.status, 206);
    assert.equal(page.headers['content-range'], '5-9/20');
    assert.equal(page.headers['preference-applied'], 'count=exact');
    assert.deepEqual(
      (JSON.parse(page.body ?? '') as Array<{ id: number }>).map((r) => r.id),
      [6, 7, 8, 9, 10],
    );
    const ranged = await read('id=gt.10', { range: '0-3' });
    assert.equal(ranged.status, 200, 'no count, no 206');
    assert.equal(ranged.headers['content-range'], '0-3/*');
    const all = await read('id=lte.3', { prefer: 'count=exact' });
    assert.equal(all.status, 200);
    assert.equal(all.headers['content-range'], '0-2/3');
    const empty = await read('id=gt.100', { prefer: 'count=exact' });
    assert.equal(empty.headers['content-range'], '*/0');
    const past = await refusalOf(() => read('offset=50', { prefer: 'count=exact' }));
    assert.equal(past.status, 416);
    assert.equal((past as PostgrestError).code, 'PGRST103');
    for (const count of ['planned', 'estimated']) {
      const counted = await read('limit=1', { prefer: `count=${count}` });
      assert.match(counted.headers['content-range'] ?? '', /^0-0\/\d+$/, count);
    }
    // Filtered, planned is the planner's estimate of the filter's rows (as PostgREST reads it from EXPLAIN),
    // not a count; estimated counts exactly while that estimate is within db-max-rows.
    await database.admin.query('ANALYZE public.gadgets');
    const plan = await database.admin.query<{ 'QUERY PLAN': Array<{ Plan: { 'Plan Rows': number } }> }>(
      "EXPLAIN (FORMAT JSON) SELECT 1 FROM public.gadgets AS t WHERE t.name LIKE 'sprocket 1%'",
    );
    const expected = plan.rows[0]?.['QUERY PLAN'][0]?.Plan['Plan Rows'];
    const exact = (await database.admin.query("SELECT count(*)::int AS n FROM public.gadgets WHERE name LIKE 'sprocket 1%'")).rows[0].n as number;
    const plannedPage = await read('name=like.sprocket%201*&limit=1', { prefer: 'count=planned' });
    assert.equal(plannedPage.headers['content-range'], `0-0/${expected}`);
    const estimatedPage = await read('name=like.sprocket%201*&limit=1', { prefer: 'count=estimated' });
    assert.equal(estimatedPage.headers['content-range'], `0-0/${exact}`, 'an estimate within db-max-rows is counted');
  });

  test('a full page walking the key links to the next one (RFC 8288), which continues after its last key', async () => {
    const first = await read('select=id&id=gt.2&limit=5');
    assert.equal(first.headers.link, '</gadgets?select=id&id=gt.2&limit=5&id=gt.7>; rel="next"');
    const next = /^<\/gadgets\?([^>]*)>/.exec(first.headers.link ?? '')?.[1] ?? '';
    assert.deepEqual(await idsOf(next), [8, 9, 10, 11, 12]);
    assert.equal((await read('select=id&id=gt.18&limit=5')).headers.link, undefined, 'the last page has no next');
    assert.equal((await read('select=id&order=name&limit=5')).headers.link, undefined, 'an order= other than the key has no keyset');
  });

  test('db-max-rows cuts the page, and Content-Range shows it', async () => {
    const small = { ...GADGETS, maxRows: 4 };
    const response = await readTable(ctx.db, small, { search: '', headers: { prefer: 'count=exact' } });
    assert.equal(response.status, 206);
    assert.equal(response.headers['content-range'], '0-3/20');
  });

  test('one object, or 406 PGRST116; CSV; nulls stripped', async () => {
    const one = await read('id=eq.7', { accept: 'application/vnd.pgrst.object+json' });
    assert.equal(one.headers['content-type'], 'application/vnd.pgrst.object+json; charset=utf-8');
    assert.equal((JSON.parse(one.body ?? '') as { id: number }).id, 7);
    for (const search of ['id=eq.700', 'id=lt.3']) {
      const err = (await refusalOf(() => read(search, { accept: 'application/vnd.pgrst.object+json' }))) as PostgrestError;
      assert.equal(err.status, 406);
      assert.equal(err.code, 'PGRST116');
    }
    const csv = await read('select=id,name,price,tags&id=in.(5,6)', { accept: 'text/csv' });
    assert.equal(csv.headers['content-type'], 'text/csv; charset=utf-8');
    assert.equal(csv.body, 'id,name,price,tags\n5,widget 5,,"[""green"",""red""]"\n6,Gizmo 6,7.50,"[""blue"",""x""]"\n');
    const stripped = await read('select=id,price&id=eq.5', { accept: 'application/vnd.pgrst.array+json;nulls=stripped' });
    assert.deepEqual(JSON.parse(stripped.body ?? ''), [{ id: 5 }]);
  });

  test('the owner narrows what may be filtered and ordered', async () => {
    const narrowed = { ...GADGETS, filterable: ['id'], orderable: ['id'] };
    await readTable(ctx.db, narrowed, { search: 'id=eq.1&order=id.desc', headers: {} });
    const filter = await refusalOf(() => readTable(ctx.db, narrowed, { search: 'or=(id.eq.1,name.eq.x)', headers: {} }));
    assert.equal(filter.status, 400);
    assert.equal(filter.field, 'or');
    const order = await refusalOf(() => readTable(ctx.db, narrowed, { search: 'order=name', headers: {} }));
    assert.equal(order.field, 'order');
    // The keyset link filters on the key: offered only while the key is filterable.
    assert.ok((await readTable(ctx.db, narrowed, { search: 'limit=5', headers: {} })).headers.link);
    const keyless = { ...GADGETS, filterable: ['name'] };
    const page = await readTable(ctx.db, keyless, { search: 'limit=5', headers: {} });
    assert.equal(JSON.parse(page.body ?? '[]').length, 5);
    assert.equal(page.headers.link, undefined, 'no next link a client could not follow');
  });

  test('refusals carry PostgREST codes: unknown column 42703, bad value 22P02, wrong operator for a type', async () => {
    const unknown = (await refusalOf(() => read('nope=eq.1'))) as PostgrestError;
    assert.equal(unknown.status, 400);
    assert.equal(unknown.code, '42703');
    const value = (await refusalOf(() => read('id=eq.abc'))) as PostgrestError;
    assert.equal(value.status, 400);
    assert.equal(value.code, '22P02');
    const like = (await refusalOf(() => read('id=like.1*'))) as PostgrestError;
    assert.equal(like.status, 400);
    const lang = (await refusalOf(() => read('name=fts(klingon).x'))) as PostgrestError;
    assert.equal(lang.status, 400);
  });
});

describe('writes', () => {
  let pristine: string;
  beforeEach(async () => {
    await database.admin.query(GADGETS_DDL);
    pristine = await tableChecksum(database.admin);
  });

  test('POST one row: 201, return=representation with select=', async () => {
    const created = await write('POST', 'select=id,name,note', { id: 100, name: 'new one', price: '3.10' }, { prefer: 'return=representation' });
    assert.equal(created.status, 201);
    assert.deepEqual(JSON.parse(created.body ?? ''), [{ id: 100, name: 'new one', note: 'none' }]);
    const minimal = await write('POST', '', { id: 101, name: 'quiet' });
    assert.equal(minimal.status, 201);
    assert.equal(minimal.body, undefined);
    assert.equal(minimal.headers.location, undefined);
    const located = await write('POST', '', { id: 102, name: 'located' }, { prefer: 'return=headers-only' });
    assert.equal(located.status, 201);
    assert.equal(located.body, undefined);
    assert.equal(located.headers.location, '/gadgets?id=eq.102');
    const { rows } = await database.admin.query('SELECT price::text AS price FROM public.gadgets WHERE id = 100');
    assert.equal(rows[0]?.price, '3.10');
  });

  test('POST an array with columns=: one statement; missing members are null, or defaults with missing=default', async () => {
    const rows = [
      { id: 200, name: 'a', tags: ['p', 'q'], meta: { k: [1, 2] } },
      { id: 201, name: 'b', note: 'given' },
    ];
    const bulk = await write('POST', 'columns="id","name","tags","meta","note"', rows, { prefer: 'count=exact' });
    assert.equal(bulk.headers['content-range'], '*/2');
    const stored = await database.admin.query('SELECT id, tags, meta, note FROM public.gadgets WHERE id >= 200 ORDER BY id');
    assert.deepEqual(stored.rows, [
      { id: '200', tags: ['p', 'q'], meta: { k: [1, 2] }, note: null },
      { id: '201', tags: null, meta: null, note: 'given' },
    ]);
    await write('POST', 'columns=id,name,note', [{ id: 202, name: 'c' }], { prefer: 'missing=default' });
    const defaulted = await database.admin.query('SELECT note FROM public.gadgets WHERE id = 202');
    assert.equal(defaulted.rows[0]?.note, 'none');
  });

  test('upsert: merge-duplicates and ignore-duplicates, on the key or on_conflict=', async () => {
    const merged = await write(
      'POST',
      '',
      [
        { id: 1, name: 'merged' },
        { id: 300, name: 'fresh' },
      ],
      { prefer: 'resolution=merge-duplicates,return=representation' },
    );
    assert.deepEqual(
      (JSON.parse(merged.body ?? '') as Array<{ name: string }>).map((r) => r.name),
      ['merged', 'fresh'],
    );
    const ignored = await write('POST', '', { id: 2, name: 'ignored' }, { prefer: 'resolution=ignore-duplicates,return=representation' });
    assert.deepEqual(JSON.parse(ignored.body ?? ''), []);
    const code = 'c81e728d-9d4c-2f63-6f06-7f89cc14862c'; // row 2's
    await write('POST', 'on_conflict=code', { id: 2, code, name: 'by code' }, { prefer: 'resolution=merge-duplicates' });
    const { rows } = await database.admin.query('SELECT id, name FROM public.gadgets WHERE id IN (1, 2, 300) ORDER BY id');
    assert.deepEqual(rows, [
      { id: '1', name: 'merged' },
      { id: '2', name: 'by code' },
      { id: '300', name: 'fresh' },
    ]);
  });

  test('PATCH and DELETE by filter; with no filter they are refused and change nothing', async () => {
    const patched = await write('PATCH', 'qty=is.null&select=id,qty', { qty: 99 }, { prefer: 'return=representation' });
    assert.equal(patched.status, 200);
    assert.deepEqual(
      (JSON.parse(patched.body ?? '') as Array<{ id: number }>).map((r) => r.id),
      await sqlIds('qty = 99'),
    );
    const deleted = await write('DELETE', 'id=gt.15', undefined, { prefer: 'count=exact' });
    assert.equal(deleted.status, 204);
    assert.equal(deleted.headers['content-range'], '*/5');
    const changed = await tableChecksum(database.admin);
    for (const method of ['PATCH', 'DELETE'] as const) {
      const err = (await refusalOf(() => write(method, '', { qty: 1 }))) as PostgrestError;
      assert.equal(err.status, 400);
      assert.equal(err.code, '21000');
    }
    assert.equal(await tableChecksum(database.admin), changed);
  });

  test('max-affected with handling=strict rolls back past the bound', async () => {
    const err = (await refusalOf(() => write('DELETE', 'id=lte.5', undefined, { prefer: 'handling=strict, max-affected=3' }))) as PostgrestError;
    assert.equal(err.status, 400);
    assert.equal(err.code, 'PGRST124');
    assert.equal(await tableChecksum(database.admin), pristine, 'nothing deleted');
    const ok = await write('DELETE', 'id=lte.3', undefined, { prefer: 'handling=strict, max-affected=3' });
    assert.equal(ok.status, 204);
  });

  test('PUT one row by its whole key', async () => {
    const row = { id: 400, name: 'put', price: '1.00', qty: 1, active: true, tags: [], meta: {}, made: '2024-05-01T00:00:00Z', code: null, note: 'n' };
    const created = await write('PUT', 'id=eq.400', row, { prefer: 'return=representation' });
    assert.equal(created.status, 200);
    await write('PUT', 'id=eq.400', { ...row, name: 'put again' });
    const { rows } = await database.admin.query('SELECT name FROM public.gadgets WHERE id = 400');
    assert.equal(rows[0]?.name, 'put again');
    assert.equal(((await refusalOf(() => write('PUT', 'id=eq.401', row))) as PostgrestError).code, 'PGRST115');
    assert.equal(((await refusalOf(() => write('PUT', 'name=eq.x', row))) as PostgrestError).code, 'PGRST105');
    assert.equal(((await refusalOf(() => write('PUT', 'id=eq.400', { id: 400 }))) as PostgrestError).code, 'PGRST102');
  });

  test('database refusals: 23505/23503 → 409, 23502/23514/22P02/22003 → 400, unknown member PGRST204', async () => {
    const cases: Array<[unknown, number, string]> = [
      [{ id: 1, name: 'dup' }, 409, '23505'],
      [{ id: 500 }, 400, '23502'],
      [{ id: 500, name: 'x', qty: -1 }, 400, '23514'],
      [{ id: 500, name: 'x', qty: 'many' }, 400, '22P02'],
      [{ id: 500, name: 'x', qty: 1e12 }, 400, '22003'],
      [{ id: 500, name: 'x', bogus: 1 }, 400, 'PGRST204'],
      [{ id: 500, name: 'x', doc: 'a' }, 400, 'PGRST204'],
      ['just text', 400, 'PGRST102'],
      [[], 400, 'PGRST102'],
      [[{ id: 500, name: 'x' }, 'not a row'], 400, 'PGRST102'],
    ];
    for (const [body, status, code] of cases) {
      const err = (await refusalOf(() => write('POST', '', body))) as PostgrestError;
      assert.equal(err.status, status, JSON.stringify(body));
      assert.equal(err.code, code, JSON.stringify(body));
    }
    assert.equal(await tableChecksum(database.admin), pristine);
  });
});

describe('hostile requests: 4xx, never 5xx, and the table unchanged', () => {
  const hostile = [
    'id=eq.1;DROP TABLE public.gadgets',
    'id=eq.1%27%20OR%201=1--',
    "name=eq.' OR ''='",
    'select=id,"name;DROP TABLE x"',
    'select=id::text);DROP TABLE x;--',
    '"id"%20OR%201=1=eq.1',
    'id"=eq.1',
    'order=id;DROP TABLE x',
    'order=id.desc,(select 1)',
    "meta->>a');DROP TABLE x;--=eq.1",
    'or=(id.eq.1,id.eq.2',
    'and=(id.eq.1))',
    'or=(id.zz.1)',
    'id=in.("1)',
    'name=fts(english);DROP).x',
    `name=eq.${'x'.repeat(10_000)}`,
    `select=${'id,'.repeat(3000)}id`,
    'limit=1e99',
    'offset=-5',
    'id=eq(any).{1,2',
    'tags=cs.{unterminated',
    'meta=cs.not json',
    'made=gt.yesterday-ish',
    'code=eq.not-a-uuid',
    'id=eq.99999999999999999999999',
  ];
  for (const search of hostile) {
    test(search.slice(0, 70), async () => {
      const unchanged = await tableChecksum(database.admin);
      for (const method of ['GET', 'PATCH', 'DELETE'] as const) {
        try {
          if (method === 'GET') await read(search);
          else await write(method, search, { name: 'hacked' });
        } catch (err) {
          assert.ok(err instanceof ApiError, String(err));
          assert.ok(err.status >= 400 && err.status < 500, `${method} ${search.slice(0, 40)} → ${err.status} ${err.message}`);
        }
        // A hostile-looking value that is only a value matches nothing and changes nothing.
      }
      assert.equal(await tableChecksum(database.admin), unchanged);
    });
  }
});
