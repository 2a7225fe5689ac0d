import assert from 'node:assert/strict';
import type { Server } from 'node:http';
import { after, before, beforeEach, describe, test } from 'node:test';
import { PostgrestClient } from '@supabase/postgrest-js';
import { contractCheckedFetch, type SeenExchange } from '../support/checkedFetch.ts';
import { startTestDatabase, startTestService, type TestDatabase, type TestService } from '../support/testService.ts';
import { gadgetsDocument, gadgetsHandlers } from './gadgetsService.ts';
import { GADGETS_DDL, tableChecksum } from './gadgetsTable.ts';

/**
 * `@supabase/postgrest-js`, unchanged, against a table served in the dialect over HTTP (router and
 * Express adapter on a real port). Every answer is checked against the OpenAPI contract, and
 * compared with what SQL says over the same table.
 */
let database: TestDatabase;
let service: TestService;
let server: Server;
let client: PostgrestClient;
const requests: SeenExchange[] = [];

before(async () => {
  database = await startTestDatabase(10);
  await database.admin.query(GADGETS_DDL);
  service = await startTestService({ database, document: gadgetsDocument('test'), handlers: gadgetsHandlers });
  server = service.app.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  const address = server.address();
  assert.ok(address && typeof address === 'object');
  const base = `http://127.0.0.1:${address.port}`;
  // The client's own fetch, with every answer checked against the contract on the way.
  client = new PostgrestClient(base, { fetch: contractCheckedFetch(service.contract, (exchange) => requests.push(exchange)) });
});
after(async () => {
  server?.close();
  await service?.close();
  await database?.stop();
});

const gadgets = () => client.from('gadgets');

async function sqlIds(where: string, order = 'id'): Promise<number[]> {
  const { rows } = await database.admin.query<{ id: string }>(`SELECT id FROM public.gadgets AS g WHERE ${where} ORDER BY ${order}`);
  return rows.map((row) => Number(row.id));
}

function ids(data: unknown): number[] {
  assert.ok(Array.isArray(data), `expected rows, got ${JSON.stringify(data)}`);
  return (data as Array<{ id: number }>).map((row) => Number(row.id));
}

describe('reads through the client agree with SQL', () => {
  test('select * returns every column in its wire form', async () => {
    const { data, error, status } = await gadgets().select('*').eq('id', 2);
    assert.equal(error, null);
    assert.equal(status, 200);
    const { rows } = await database.admin.query(
      'SELECT id::int, name, price::text, qty, active, tags, meta, made, code, note, doc::text FROM public.gadgets WHERE id = 2',
    );
    const expected = { ...rows[0], made: '2024-01-03T00:00:00+00:00' };
    assert.deepEqual(data, [expected]);
  });

  const cases: Array<[string, () => PromiseLike<{ data: unknown; error: unknown }>, string]> = [
    ['eq', () => gadgets().select('id').eq('id', 3), 'id = 3'],
    ['neq', () => gadgets().select('id').neq('id', 3), 'id <> 3'],
    ['gt + lte', () => gadgets().select('id').gt('id', 4).lte('id', 8), 'id > 4 AND id <= 8'],
    ['gte + lt', () => gadgets().select('id').gte('price', 10).lt('qty', 5), 'price >= 10 AND qty < 5'],
    ['like', () => gadgets().select('id').like('name', '%dget%'), "name LIKE '%dget%'"],
    ['ilike', () => gadgets().select('id').ilike('name', 'g%'), "name ILIKE 'g%'"],
    ['likeAnyOf', () => gadgets().select('id').likeAnyOf('name', ['g%', 's%']), "name LIKE ANY(ARRAY['g%', 's%'])"],
    ['likeAllOf', () => gadgets().select('id').likeAllOf('name', ['%e%', '%1%']), "name LIKE ALL(ARRAY['%e%', '%1%'])"],
    ['ilikeAnyOf', () => gadgets().select('id').ilikeAnyOf('name', ['G%', 'W%']), "name ILIKE ANY(ARRAY['g%', 'w%'])"],
    ['match', () => gadgets().select('id').filter('name', 'match', '^w.*1'), "name ~ '^w.*1'"],
    ['imatch', () => gadgets().select('id').filter('name', 'imatch', '^GIZ'), "name ~* '^giz'"],
    ['in', () => gadgets().select('id').in('id', [1, 2, 3]), 'id IN (1, 2, 3)'],
    ['in with commas', () => gadgets().select('id').in('name', ['gadget 4', 'a,b', 'widget 1']), "name IN ('gadget 4', 'widget 1')"],
    ['not in', () => gadgets().select('id').not('id', 'in', '(1,2)'), 'id NOT IN (1, 2)'],
    ['is null', () => gadgets().select('id').is('price', null), 'price IS NULL'],
    ['is true', () => gadgets().select('id').is('active', true), 'active IS TRUE'],
    ['not is null', () => gadgets().select('id').not('active', 'is', null), 'active IS NOT NULL'],
    ['isDistinct', () => gadgets().select('id').isDistinct('qty', 3), 'qty IS DISTINCT FROM 3'],
    ['contains array', () => gadgets().select('id').contains('tags', ['red']), "tags @> '{red}'"],
    ['containedBy array', () => gadgets().select('id').containedBy('tags', ['red', 'blue', 'green']), "tags <@ '{red,blue,green}'"],
    ['overlaps', () => gadgets().select('id').overlaps('tags', ['x', 'green']), "tags && '{x,green}'"],
    ['contains json', () => gadgets().select('id').contains('meta', { size: 'L' }), `meta @> '{"size":"L"}'`],
    ['json path ->>', () => gadgets().select('id').eq('meta->>size', 'M'), "meta->>'size' = 'M'"],
    ['json path ->', () => gadgets().select('id').gt('meta->n', 15), "meta->'n' > '15'"],
    ['textSearch tsvector', () => gadgets().select('id').textSearch('doc', 'gadget'), "doc @@ to_tsquery('gadget')"],
    [
      'textSearch config',
      () => gadgets().select('id').textSearch('name', 'widgets', { config: 'english' }),
      "to_tsvector('english', name) @@ to_tsquery('english', 'widgets')",
    ],
    ['textSearch plain', () => gadgets().select('id').textSearch('name', 'gizmo 6', { type: 'plain' }), "to_tsvector(name) @@ plainto_tsquery('gizmo 6')"],
    [
      'textSearch phrase',
      () => gadgets().select('id').textSearch('name', 'sprocket 3', { type: 'phrase', config: 'english' }),
      "to_tsvector('english', name) @@ phraseto_tsquery('english', 'sprocket 3')",
    ],
    [
      'textSearch websearch',
      () => gadgets().select('id').textSearch('name', 'gadget or widget', { type: 'websearch' }),
      "to_tsvector(name) @@ websearch_to_tsquery('gadget or widget')",
    ],
    ['or', () => gadgets().select('id').or('id.lt.3,id.gt.18'), 'id < 3 OR id > 18'],
    ['or with and', () => gadgets().select('id').or('id.eq.5,and(id.gt.10,qty.is.null)'), 'id = 5 OR (id > 10 AND qty IS NULL)'],
    ['not or', () => gadgets().select('id').not('id', 'eq', 4).gt('id', 2).lt('id', 7), 'id <> 4 AND id > 2 AND id < 7'],
    ['match()', () => gadgets().select('id').match({ active: true, qty: 3 }), 'active AND qty = 3'],
  ];
  for (const [name, run, where] of cases) {
    test(`${name}  ≡  ${where}`, async () => {
      const { data, error } = await run();
      assert.equal(error, null, JSON.stringify(error));
      assert.deepEqual(ids(data), await sqlIds(where));
    });
  }

  test('order by several keys, nulls placement', async () => {
    const { data } = await gadgets().select('id').order('qty', { ascending: false, nullsFirst: false }).order('id', { ascending: false });
    assert.deepEqual(ids(data), await sqlIds('true', 'qty DESC NULLS LAST, id DESC'));
  });

  test('aliases, casts and JSON paths in select', async () => {
    const { data } = await gadgets().select('ident:id, cost:price::float8, meta->>size, meta->nested').eq('id', 4);
    assert.deepEqual(data, [{ ident: 4, cost: 5, size: 'M', nested: { even: true } }]);
  });

  test('range() with count=exact: Content-Range, the count, 206', async () => {
    const { data, count, status } = await gadgets().select('id', { count: 'exact' }).order('id').range(5, 9);
    assert.deepEqual(ids(data), [6, 7, 8, 9, 10]);
    assert.equal(count, 20);
    assert.equal(status, 206);
    const limited = await gadgets().select('id').limit(3);
    assert.deepEqual(ids(limited.data), [1, 2, 3]);
  });

  test('head: the count without rows', async () => {
    const { data, count, status } = await gadgets().select('*', { count: 'exact', head: true }).gt('id', 15);
    assert.equal(data, null);
    assert.equal(count, 5);
    assert.equal(status, 200);
    const planned = await gadgets().select('*', { count: 'planned', head: true });
    assert.equal(typeof planned.count, 'number');
  });

  test('single() and maybeSingle(); PGRST116 when not exactly one', async () => {
    const one = await gadgets().select('id,name').eq('id', 7).single();
    assert.deepEqual(one.data, { id: 7, name: 'sprocket 7' });
    const none = await gadgets().select('id').eq('id', 700).single();
    assert.equal(none.status, 406);
    assert.equal(none.error?.code, 'PGRST116');
    const maybe = await gadgets().select('id').eq('id', 700).maybeSingle();
    assert.equal(maybe.data, null);
    assert.equal(maybe.error, null);
    const several = await gadgets().select('id').lt('id', 3).single();
    assert.equal(several.error?.code, 'PGRST116');
  });

  test('csv()', async () => {
    const { data } = await gadgets().select('id,name').in('id', [1, 2]).csv();
    assert.equal(data, 'id,name\n1,widget 1\n2,Gizmo 2\n');
  });

  test('errors carry PostgREST codes', async () => {
    const unknown = await gadgets().select('id').eq('nope', 1);
    assert.equal(unknown.status, 400);
    assert.equal(unknown.error?.code, '42703');
    const value = await gadgets().select('id').eq('id', 'abc');
    assert.equal(value.error?.code, '22P02');
    const embed = await gadgets().select('id, owner(*)');
    assert.equal(embed.error?.code, 'PGRST100');
  });
});

describe('writes through the client', () => {
  beforeEach(async () => {
    await database.admin.query(GADGETS_DDL);
  });

  test('insert one row and read it back; insert many (columns=); defaults with defaultToNull: false', async () => {
    const one = await gadgets()
      .insert({ id: 100, name: 'new', price: '1.50', tags: ['a'], meta: { k: 1 } })
      .select('id, name, note')
      .single();
    assert.equal(one.status, 201);
    assert.deepEqual(one.data, { id: 100, name: 'new', note: 'none' });
    const many = await gadgets().insert([
      { id: 101, name: 'a' },
      { id: 102, name: 'b', note: 'x' },
    ]);
    assert.equal(many.status, 201);
    assert.equal(many.error, null);
    const { rows } = await database.admin.query('SELECT id::int, note FROM public.gadgets WHERE id IN (101, 102) ORDER BY id');
    assert.deepEqual(rows, [
      { id: 101, note: null },
      { id: 102, note: 'x' },
    ]);
    await gadgets().insert(
      [
        { id: 103, name: 'c' },
        { id: 104, name: 'd', note: 'y' },
      ],
      { defaultToNull: false },
    );
    const defaults = await database.admin.query('SELECT note FROM public.gadgets WHERE id IN (103, 104) ORDER BY id');
    assert.deepEqual(
      defaults.rows.map((r) => r.note),
      ['none', 'y'],
    );
  });

  test('upsert: merge, ignoreDuplicates, onConflict', async () => {
    const merged = await gadgets()
      .upsert([
        { id: 1, name: 'merged' },
        { id: 300, name: 'fresh' },
      ])
      .select('id,name');
    assert.deepEqual(merged.data, [
      { id: 1, name: 'merged' },
      { id: 300, name: 'fresh' },
    ]);
    const ignored = await gadgets().upsert({ id: 2, name: 'ignored' }, { ignoreDuplicates: true }).select('id');
    assert.deepEqual(ignored.data, []);
    await gadgets().upsert({ id: 2, code: 'c81e728d-9d4c-2f63-6f06-7f89cc14862c', name: 'by code' }, { onConflict: 'code' });
    const { rows } = await database.admin.query('SELECT name FROM public.gadgets WHERE id = 2');
    assert.equal(rows[0]?.name, 'by code');
  });

  test('update and delete by filter; with count', async () => {
    const updated = await gadgets().update({ qty: 42 }, { count: 'exact' }).is('qty', null).select('id');
    assert.equal(updated.error, null);
    assert.deepEqual(ids(updated.data), await sqlIds('qty = 42'));
    assert.equal(updated.count, 3);
    const deleted = await gadgets().delete({ count: 'exact' }).gt('id', 15);
    assert.equal(deleted.status, 204);
    assert.equal(deleted.count, 5);
    assert.deepEqual(await sqlIds('id > 15'), []);
  });

  test('update or delete without a filter is refused and changes nothing', async () => {
    const before = await tableChecksum(database.admin);
    const update = await gadgets().update({ qty: 1 });
    assert.equal(update.status, 400);
    assert.equal(update.error?.code, '21000');
    const remove = await gadgets().delete();
    assert.equal(remove.error?.code, '21000');
    assert.equal(await tableChecksum(database.admin), before);
  });

  test('maxAffected rolls back a change past it', async () => {
    const before = await tableChecksum(database.admin);
    // maxAffected() is typed for a PostgREST 13 schema; the request it sends is what matters here.
    const builder = gadgets().delete().lte('id', 5) as unknown as { maxAffected(rows: number): PromiseLike<{ error: { code: string } | null }> };
    const refused = await builder.maxAffected(2);
    assert.equal(refused.error?.code, 'PGRST124');
    assert.equal(await tableChecksum(database.admin), before);
  });

  test('database refusals: 23505 → 409, 23514 → 400, 23502 → 400', async () => {
    const duplicate = await gadgets().insert({ id: 1, name: 'again' });
    assert.equal(duplicate.status, 409);
    assert.equal(duplicate.error?.code, '23505');
    const check = await gadgets().insert({ id: 900, name: 'neg', qty: -1 });
    assert.equal(check.status, 400);
    assert.equal(check.error?.code, '23514');
    const notNull = await gadgets().insert({ id: 901 });
    assert.equal(notNull.error?.code, '23502');
  });

  test('PUT one row by its key (curl-style: the client has no PUT)', async () => {
    const url = `${(client as unknown as { url: URL }).url}/gadgets?id=eq.500`;
    const row = { id: 500, name: 'put', price: '2.00', qty: 1, active: true, tags: [], meta: {}, made: '2024-02-01T00:00:00Z', code: null, note: 'n' };
    const put = await fetch(url, {
      method: 'PUT',
      headers: { 'content-type': 'application/json', prefer: 'return=representation' },
      body: JSON.stringify(row),
    });
    const text = await put.text();
    service.contract.check('PUT', '/gadgets?id=eq.500', { status: put.status, headers: Object.fromEntries(put.headers), text });
    assert.equal(put.status, 200, text);
    assert.equal((JSON.parse(text) as Array<{ name: string }>)[0]?.name, 'put');
  });
});

test('reads are cached: a write invalidates them', async () => {
  await database.admin.query(GADGETS_DDL);
  const first = await gadgets().select('id,name').eq('id', 9);
  await gadgets().update({ name: 'renamed' }).eq('id', 9);
  const second = await gadgets().select('id,name').eq('id', 9);
  assert.notDeepEqual(first.data, second.data);
  assert.deepEqual(second.data, [{ id: 9, name: 'renamed' }]);
  assert.ok(
    requests.every((r) => r.status < 500),
    'no 5xx',
  );
});
