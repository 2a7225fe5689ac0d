import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { PostgrestError } from '@supabase/postgrest-js';
import { quoteIdent } from '../../lib/db/sqlIdentifiers.ts';
import type { Row, RowColumn } from './tableRows.ts';
import { type ClientResult, DIALECT_PARAMETERS, dialectName, dialectValue, rowsOf, type SuiteState } from './tableSuiteState.ts';

/**
 * The collection's reads through `@supabase/postgrest-js`, as a front end written for the Lakebase
 * Data API calls them: select=, filters, order=, range/limit, counts, one object, CSV. Each answer
 * is compared with what SQL says over the same table (the client's fetch checks it against the
 * contract first), within what the owner's narrowing allows.
 */

/** Kinds that compare with =, <, > in Postgres and in the dialect alike. */
const ORDERED = new Set([
  'int2',
  'int4',
  'int8',
  'numeric',
  'float4',
  'float8',
  'text',
  'varchar',
  'bpchar',
  'uuid',
  'date',
  'timestamp',
  'timestamptz',
  'time',
  'enum',
]);
const EQUATABLE = new Set([...ORDERED, 'bool', 'timetz']);
const PATTERNS = new Set(['text', 'varchar']);

/** The problem's `field`: PostgREST's fields plus the service's own members. */
const fieldOf = (error: PostgrestError | null) => (error as unknown as { field?: string } | null)?.field;

/** RFC 4180, as a reader of the JSON answer would write it: nulls empty, objects as JSON, quoted when they must be. */
function csvOf(rows: readonly Row[], names: readonly string[]): string {
  const field = (value: unknown) => {
    if (value === null || value === undefined) return '';
    const text = typeof value === 'object' ? JSON.stringify(value) : String(value);
    return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
  };
  return [names, ...rows.map((row) => names.map((name) => row[name]))].map((line) => `${line.map(field).join(',')}\n`).join('');
}

export function describeClientReads(state: SuiteState): void {
  const { spec } = state;
  const keySelect = () => spec.key.map(dialectName).join(',');
  /** Ordered by the key where the owner lets clients order by it (else the dialect's default: the primary key). */
  const byKey = <T extends { order(column: string): T }>(builder: T): T =>
    spec.key.every((k) => state.orderable(k)) ? spec.key.reduce((b, k) => b.order(k), builder) : builder;
  /** Every row, through the client, in key order: the values front ends see. */
  const everyRow = async () => rowsOf(await byKey(state.from().select('*')), 'select=*');
  /** The first non-null value of `column` among `rows`, and another one, distinct where the table has one. */
  const samples = (rows: readonly Row[], column: RowColumn) => {
    const present = rows.map((r) => r[column.name]).filter((v) => v !== null && v !== undefined);
    const other = present.find((v) => JSON.stringify(v) !== JSON.stringify(present[0]));
    return present.length === 0 ? [] : other === undefined ? [present[0]] : [present[0], other];
  };

  test('postgrest-js: select=* gives every row once, every value as inserted; a column list and aliases give just those members', async () => {
    const rows = await everyRow();
    assert.equal(rows.length, Math.min(await state.sqlCount(), spec.dialect?.maxRows ?? Infinity));
    assert.equal(new Set(rows.map(state.keyOf)).size, rows.length, 'no row twice');
    for (const row of rows) state.assertRoundTrip(row);
    const others = spec.columns.filter((c) => !spec.key.includes(c.name)).slice(0, 2);
    const shaped = rowsOf(
      await byKey(state.from().select([keySelect(), ...others.map((c, i) => `other_${i}:${dialectName(c.name)}`)].join(','))),
      'select with aliases',
    );
    assert.equal(shaped.length, rows.length);
    shaped.forEach((item, n) => {
      assert.deepEqual(Object.keys(item), [...spec.key, ...others.map((_, i) => `other_${i}`)]);
      const whole = rows.find((row) => state.keyOf(row) === state.keyOf(item));
      assert.ok(whole, `row ${n} is one of select=*'s`);
      for (const [i, c] of others.entries()) assert.deepEqual(item[`other_${i}`], whole[c.name], `other_${i} is ${c.name}`);
    });
  });

  test('postgrest-js: eq, not.eq, gt, in, is, like and or= agree with the same condition in SQL on every filterable column', async () => {
    const rows = await everyRow();
    let compared = 0;
    const agree = async (what: string, call: ClientResult | PromiseLike<ClientResult>, where: string, values: unknown[]) => {
      const answered = rowsOf(await call, what);
      const expected = await state.sqlRows(spec.key, `WHERE ${where}`, values);
      assert.deepEqual(answered.map(state.keyOf).sort(), expected.map(state.keyOf).sort(), `${what}  ≡  ${where} ${JSON.stringify(values)}`);
      compared++;
    };
    for (const column of spec.columns.filter((c) => state.filterable(c.name))) {
      const name = column.name;
      const sql = `t.${quoteIdent(name)}`;
      const kind = column.fixture.kind;
      const [value, other] = samples(rows, column);
      if (value !== undefined && EQUATABLE.has(kind)) {
        await agree(`eq ${name}`, state.from().select(keySelect()).eq(name, value), `${sql} = ${state.input(name, 1)}`, [value]);
        await agree(`not.eq ${name}`, state.from().select(keySelect()).not(name, 'eq', value), `NOT (${sql} = ${state.input(name, 1)})`, [value]);
      }
      if (value !== undefined && ORDERED.has(kind)) {
        await agree(`gt ${name}`, state.from().select(keySelect()).gt(name, value), `${sql} > ${state.input(name, 1)}`, [value]);
        // postgrest-js quotes a value holding a comma or parenthesis but does not escape a double quote in it.
        const list = (other === undefined ? [value] : [value, other]).filter((v) => !/["\\]/.test(String(v)));
        if (list.length > 0) {
          const placeholders = list.map((_, i) => state.input(name, i + 1)).join(', ');
          await agree(`in ${name}`, state.from().select(keySelect()).in(name, list), `${sql} IN (${placeholders})`, list);
        }
      }
      if (!column.notNull) await agree(`is null ${name}`, state.from().select(keySelect()).is(name, null), `${sql} IS NULL`, []);
      if (kind === 'bool') await agree(`is true ${name}`, state.from().select(keySelect()).is(name, true), `${sql} IS TRUE`, []);
      if (typeof value === 'string' && PATTERNS.has(kind) && !/[%_*\\]/.test(value.slice(0, 2))) {
        const pattern = `${value.slice(0, 2)}%`;
        await agree(`like ${name}`, state.from().select(keySelect()).like(name, pattern), `${sql} LIKE $1`, [pattern]);
      }
      if (value !== undefined && EQUATABLE.has(kind)) {
        // or= with a nested and= and a not., values quoted as the dialect allows (so dots, commas and parentheses stay in them).
        const field = dialectName(name);
        const [tree, where] = ORDERED.has(kind)
          ? [
              `${field}.eq.${dialectValue(value)},and(${field}.not.is.null,${field}.gt.${dialectValue(value)})`,
              `${sql} = $1 OR (${sql} IS NOT NULL AND ${sql} > $1)`,
            ]
          : [`${field}.eq.${dialectValue(value)},${field}.is.null`, `${sql} = $1 OR ${sql} IS NULL`];
        await agree(
          `or ${name}`,
          state.from().select(keySelect()).or(tree),
          where.replaceAll('$1', () => state.input(name, 1)),
          [value],
        );
      }
    }
    if (spec.columns.some((c) => state.filterable(c.name))) assert.ok(compared > 0, 'some filter was compared');
  });

  test('postgrest-js: order() by each orderable column, descending with nulls last, agrees with SQL', async () => {
    for (const column of spec.columns.filter((c) => state.orderable(c.name) && ORDERED.has(c.fixture.kind))) {
      const answered = rowsOf(await state.from().select(dialectName(column.name)).order(column.name, { ascending: false, nullsFirst: false }), column.name);
      const expected = await state.sqlRows([column.name], '', [], `t.${quoteIdent(column.name)} DESC NULLS LAST`);
      state.assertSameRows(answered, expected, `order=${column.name}.desc.nullslast`);
    }
  });

  test('postgrest-js: range() with count exact answers 206 with Content-Range; limit(); head with count', async () => {
    const total = await state.sqlCount();
    const bound = Math.min(total, spec.dialect?.maxRows ?? Infinity);
    const page = await byKey(state.from().select(keySelect(), { count: 'exact' })).range(1, 3);
    const rows = rowsOf(page, 'range(1, 3)');
    assert.equal(page.count, total, 'the count from Content-Range');
    assert.equal(rows.length, Math.max(0, Math.min(3, spec.dialect?.maxRows ?? Infinity, total - 1)));
    assert.equal(page.status, rows.length < total ? 206 : 200);
    if (spec.key.every((k) => state.orderable(k))) {
      assert.deepEqual(rows.map(state.keyOf), (await state.sqlRows(spec.key, '', [], `${state.keyOrder} OFFSET 1 LIMIT 3`)).map(state.keyOf));
    }
    assert.equal(rowsOf(await state.from().select(keySelect()).limit(2), 'limit(2)').length, Math.min(2, bound));
    const { count, data, error } = await state.from().select('*', { count: 'exact', head: true });
    assert.equal(error, null, JSON.stringify(error));
    assert.equal(count, total);
    assert.equal(data, null, 'HEAD: no rows');
    if (spec.dialect?.maxRows !== undefined && spec.dialect.maxRows < total) {
      const cut = await state.from().select(keySelect(), { count: 'exact' });
      assert.equal(rowsOf(cut, 'maxRows').length, spec.dialect.maxRows, 'the owner’s maxRows bounds the answer');
      assert.equal(cut.status, 206);
    }
  });

  test('postgrest-js: single() gives one object, or 406 PGRST116 for none or several; maybeSingle() gives null for none', async () => {
    const [first] = await everyRow();
    assert.ok(first);
    const one = await byKey(state.from().select('*')).limit(1).single();
    assert.equal(one.error, null, JSON.stringify(one.error));
    assert.equal(one.status, 200);
    state.assertRoundTrip(one.data as Row);
    if (spec.key.every((k) => state.filterable(k))) {
      const exact = await state
        .from()
        .select('*')
        .match(Object.fromEntries(spec.key.map((k) => [k, first[k]])))
        .single();
      assert.equal(exact.error, null, JSON.stringify(exact.error));
      assert.deepEqual(exact.data, first, 'single() by the key is the row');
    }
    for (const rows of [0, 2]) {
      const refused = await state.from().select(keySelect()).limit(rows).single();
      assert.equal(refused.status, 406, `${rows} rows`);
      assert.equal(refused.error?.code, 'PGRST116');
    }
    const none = await state.from().select(keySelect()).limit(0).maybeSingle();
    assert.deepEqual([none.data, none.error], [null, null]);
    const several = await state.from().select(keySelect()).limit(2).maybeSingle();
    assert.equal(several.error?.code, 'PGRST116');
  });

  test('postgrest-js: csv() is the JSON answer as CSV, headed by the column names', async () => {
    const json = rowsOf(await byKey(state.from().select('*')).limit(3), 'JSON');
    const csv = await byKey(state.from().select('*')).limit(3).csv();
    assert.equal(csv.error, null, JSON.stringify(csv.error));
    assert.equal(
      csv.data,
      csvOf(
        json,
        spec.columns.map((c) => c.name),
      ),
    );
  });

  test("postgrest-js: grammar the dialect refuses is a 400 with PostgREST's code, naming the parameter", async () => {
    // A column the dialect can name in a filter (not one called like its own parameters: order, select, …).
    const first = (spec.columns.find((c) => !DIALECT_PARAMETERS.has(c.name)) ?? spec.columns[0]!).name;
    const cases: Array<[string, PromiseLike<ClientResult>, string, string]> = [
      ['select=no_such_column', state.from().select('no_such_column'), 'select', '42703'],
      ['no_such_column=eq.1', state.from().select(keySelect()).eq('no_such_column', 1), 'no_such_column', '42703'],
      [`${first}=zz.1`, state.from().select(keySelect()).filter(first, 'zz', '1'), first, 'PGRST100'],
      ['or=((a.eq.1)', state.from().select(keySelect()).or('(a.eq.1'), 'or', 'PGRST100'],
    ];
    for (const [what, call, field, code] of cases) {
      const { status, error } = await call;
      assert.equal(status, 400, `${what}: ${JSON.stringify(error)}`);
      assert.equal(error?.code, code, what);
      assert.equal(fieldOf(error), field, what);
    }
  });

  test("postgrest-js: a filter or order on a column the owner's narrowing leaves out is a 400 PGRST100 naming it", async (t) => {
    const narrowed = spec.columns.filter((c) => !state.allowsFilter(c.name));
    const unordered = spec.columns.filter((c) => !state.orderable(c.name));
    if (narrowed.length === 0 && unordered.length === 0) {
      // Nothing narrowed: every column takes a filter and an order (the checks above use each one).
      t.diagnostic('functions/<singular>Dialect.ts narrows nothing');
      assert.equal(spec.dialect?.filterable, undefined);
      return;
    }
    const rows = await everyRow();
    for (const column of narrowed) {
      const value = rows.find((r) => r[column.name] !== null && r[column.name] !== undefined)?.[column.name] ?? 'x';
      const calls: Array<[string, PromiseLike<ClientResult>]> = [
        [
          'or=',
          state
            .from()
            .select(keySelect())
            .or(`${dialectName(column.name)}.is.null`),
        ],
      ];
      // A column called like one of the dialect's parameters (order, select, …) is named inside or= only.
      if (!DIALECT_PARAMETERS.has(column.name)) calls.push(['a filter', state.from().select(keySelect()).eq(column.name, value)]);
      for (const [what, call] of calls) {
        const { status, error } = await call;
        assert.equal(status, 400, `${what} on ${column.name}: ${JSON.stringify(error)}`);
        assert.equal(error?.code, 'PGRST100');
        assert.ok(error?.message.includes(`may not be filtered on ${column.name}`), error?.message);
      }
    }
    for (const column of unordered) {
      const { status, error } = await state.from().select(keySelect()).order(column.name);
      assert.equal(status, 400, `order by ${column.name}: ${JSON.stringify(error)}`);
      assert.equal(error?.code, 'PGRST100');
      assert.equal(fieldOf(error), 'order');
      assert.ok(error?.message.includes(column.name), error?.message);
    }
  });
}
