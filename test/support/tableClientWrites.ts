import assert from 'node:assert/strict';
import { test } from 'node:test';
import { quoteIdent } from '../../lib/db/sqlIdentifiers.ts';
import { fixtureValue, type Row, type RowColumn } from './tableRows.ts';
import { canonical, type ClientResult, dialectName, rowsOf, type SuiteState } from './tableSuiteState.ts';

/**
 * The collection's writes (`--write`) through `@supabase/postgrest-js`: insert one row and an array,
 * upsert on a unique key (merge and ignore), update and delete by a filter, and the refusal of an
 * unfiltered update or delete. Each write is checked in the database behind the API's back, and the
 * cached reads of the table follow it.
 */
export function describeClientWrites(state: SuiteState): void {
  const { spec } = state;
  const keySelect = () => spec.key.map(dialectName).join(',');
  // Rows are addressed by their keys inside or= (where even a key column called `order` can be named).
  const keysFilterable = () => spec.key.every((k) => state.allowsFilter(k));
  /** Rows this suite wrote through the client, as the API gave them back; the update and delete tests use them. */
  const written: Row[] = [];

  /**
   * A column a write may change: writable, outside the primary key and every foreign key, with an exact
   * mapping; outside every unique key too unless `besides` (one row's unique column may take a new value).
   */
  const changeable = (besides: readonly string[] = []): RowColumn | undefined => {
    const candidates = spec.columns.filter(
      (c) =>
        c.writable &&
        !c.filledByDatabase &&
        spec.updatable.includes(c.name) &&
        !besides.includes(c.name) &&
        !spec.foreignKeys.some((f) => f.columns.includes(c.name)) &&
        c.fixture.kind !== 'text form',
    );
    const free = candidates.find((c) => !spec.uniqueKeys.some((k) => k.includes(c.name)));
    return besides.length === 0 ? free : (free ?? candidates[0]);
  };

  /** The writable members of a row the API gave back: a body the dialect accepts (no generated or ALWAYS identity columns). */
  const body = (row: Row): Row => Object.fromEntries(spec.columns.filter((c) => c.writable && c.name in row).map((c) => [c.name, row[c.name]]));

  /** Rows the database accepts, found by trying (rolled back; the parent rows they need are kept). */
  async function acceptedRows(count: number, from: number): Promise<Row[]> {
    const found: Row[] = [];
    for (let i = from; found.length < count && i < from + 200; i++) {
      const row = await state.rows.insert(i, { keep: false });
      if (row) found.push(row);
    }
    assert.equal(found.length, count, `${count} rows the table accepts`);
    return found;
  }

  /** The cached count through the client: `select('*', { count: 'exact', head: true })`. */
  async function countThroughClient(): Promise<number> {
    const { count, error } = await state.from().select('*', { count: 'exact', head: true });
    assert.equal(error, null, JSON.stringify(error));
    return count ?? Number.NaN;
  }

  test('postgrest-js: insert() one row and then an array (columns=): 201, the rows as sent, in the database, the cached counts follow', async () => {
    const before = await countThroughClient();
    let one: Row | undefined;
    for (let i = 5000; !one && i < 5200; i++) {
      const [row] = await acceptedRows(1, i);
      const { status, data, error } = await state.from().insert(row!).select();
      if (status === 201) {
        one = (data as Row[])[0];
        for (const column of spec.columns) {
          if (column.name in row! && column.fixture.kind !== 'text form') {
            assert.deepEqual(canonical(column.fixture, one![column.name]), canonical(column.fixture, row![column.name]), `${column.name} as sent`);
          }
        }
      } else {
        assert.ok(status >= 400 && status < 500, JSON.stringify(error));
      }
    }
    assert.ok(one, 'a row was inserted through the client');
    let pair: Row[] | undefined;
    for (let i = 5200; !pair && i < 5400; i += 2) {
      const rows = await acceptedRows(2, i);
      const answer: ClientResult = await state.from().insert(rows).select(keySelect());
      if (answer.status === 201) pair = rowsOf(answer, 'insert([…])');
      else assert.ok(answer.status >= 400 && answer.status < 500, JSON.stringify(answer.error));
    }
    assert.ok(pair?.length === 2, 'an array of two rows was inserted in one request');
    const keys = state.keysWhere([one, ...pair]);
    assert.equal(await state.sqlCount(keys.where, keys.values), 3, 'the three rows are in the table');
    const [stored] = await state.sqlRows(
      spec.columns.map((c) => c.name),
      state.keysWhere([one]).where,
      state.keysWhere([one]).values,
    );
    state.assertSameRows([body(stored!)], [body(one)], 'the row in the table is the row the API returned');
    written.push(
      one,
      ...(
        await state.sqlRows(
          spec.columns.map((c) => c.name),
          keys.where,
          keys.values,
        )
      ).filter((r) => state.keyOf(r) !== state.keyOf(one)),
    );
    for (const row of written) state.inserted.set(state.keyOf(row), row);
    assert.equal(await countThroughClient(), before + 3, 'the inserts evicted the cached count');
    assert.equal((await state.service.api.get(`${spec.path}/count`)).body.count, before + 3, 'and /count');
  });

  test('postgrest-js: upsert() on a unique key merges into the existing row; with ignoreDuplicates it changes nothing', async (t) => {
    const existing = written[0];
    const target = spec.uniqueKeys.find((k) => k.every((c) => state.column(c).writable && existing?.[c] !== null && existing?.[c] !== undefined));
    // A unique column outside the target may change too: the merge touches this one row only.
    const column = target && changeable(target);
    if (!column || !existing || !target) {
      t.diagnostic(`no column to change or no unique key to resolve on: ${column?.name} ${target}`);
      assert.ok(!existing || !column || !target);
      return;
    }
    const where = `WHERE ${target.map((c, n) => `t.${quoteIdent(c)} = ${state.input(c, n + 1)}`).join(' AND ')}`;
    const targetValues = target.map((c) => existing[c]);
    const stored = async () => (await state.sqlRows([column.name], where, targetValues))[0]?.[column.name];
    let merged: unknown;
    for (let j = 7001; merged === undefined && j < 7041; j++) {
      const value = fixtureValue(column.fixture, j);
      if (JSON.stringify(value) === JSON.stringify(existing[column.name])) continue;
      const { status, error } = await state.from().upsert({ ...body(existing), [column.name]: value }, { onConflict: target.join(',') });
      if (status < 300) merged = value;
      else assert.ok(status >= 400 && status < 500, JSON.stringify(error));
    }
    assert.notEqual(merged, undefined, `an upsert on ${target.join(', ')} was accepted`);
    assert.deepEqual(canonical(column.fixture, await stored()), canonical(column.fixture, merged), `${column.name} merged`);
    assert.equal(await state.sqlCount(where, targetValues), 1, 'merged, not inserted');
    const before = await state.checksum();
    const ignored = await state
      .from()
      .upsert({ ...body(existing), [column.name]: existing[column.name] }, { onConflict: target.join(','), ignoreDuplicates: true })
      .select();
    assert.equal(ignored.error, null, JSON.stringify(ignored.error));
    assert.deepEqual(ignored.data, [], 'nothing written');
    assert.equal(await state.checksum(), before, 'the table is unchanged');
  });

  test('postgrest-js: update() and delete() by a filter change exactly the rows it matches; without a filter they are refused and change nothing', async (t) => {
    assert.ok(written.length >= 2, 'rows written by the insert test');
    const column = changeable();
    const targets = written.slice(1, 3);
    const mine = state.keysWhere(targets);
    const others = { where: mine.others, values: mine.values };
    const othersBefore = await state.checksum(others.where, others.values);
    if (column && keysFilterable()) {
      let changed: unknown;
      for (let j = 7101; changed === undefined && j < 7141; j++) {
        const value = fixtureValue(column.fixture, j);
        const { status, count, data, error }: ClientResult = await state
          .from()
          .update({ [column.name]: value }, { count: 'exact' })
          .or(state.keysFilter(targets))
          .select(keySelect());
        if (status >= 300) {
          assert.ok(status >= 400 && status < 500, JSON.stringify(error));
          continue;
        }
        changed = value;
        assert.equal(count, 2);
        assert.deepEqual(rowsOf({ status, count, data, error }, 'update').map(state.keyOf).sort(), targets.map(state.keyOf).sort());
      }
      assert.notEqual(changed, undefined, `an update of ${column.name} was accepted`);
      for (const row of await state.sqlRows([column.name], mine.where, mine.values)) {
        assert.deepEqual(canonical(column.fixture, row[column.name]), canonical(column.fixture, changed), `${column.name} updated`);
      }
      assert.equal(await state.checksum(others.where, others.values), othersBefore, 'no other row changed');
    } else {
      t.diagnostic('no update by a filter: every column outside the key is in a unique key or a foreign key, or the key is not filterable');
    }

    const whole = await state.checksum();
    const some = column ?? spec.columns.find((c) => c.writable)!;
    const update = await state.from().update({ [some.name]: fixtureValue(some.fixture, 1) });
    assert.equal(update.status, 400, JSON.stringify(update.error));
    assert.equal(update.error?.code, '21000');
    const remove = await state.from().delete();
    assert.equal(remove.status, 400, JSON.stringify(remove.error));
    assert.equal(remove.error?.code, '21000');
    assert.equal(await state.checksum(), whole, 'the unfiltered update and delete changed nothing');

    if (keysFilterable()) {
      const before = await countThroughClient();
      const deleted = await state.from().delete({ count: 'exact' }).or(state.keysFilter(targets));
      assert.equal(deleted.status, 204, JSON.stringify(deleted.error));
      assert.equal(deleted.count, 2);
      assert.equal(await state.sqlCount(mine.where, mine.values), 0, 'deleted from the table');
      assert.equal(await state.checksum(others.where, others.values), othersBefore, 'no other row deleted');
      assert.equal(await countThroughClient(), before - 2, 'the delete evicted the cached count');
      for (const row of targets) state.inserted.delete(state.keyOf(row));
    }
  });

  test('postgrest-js: a row the database refuses is an error with its SQLSTATE (23505 409, 23503 409), and the table is unchanged', async () => {
    const before = await state.checksum();
    const existing = written[0] ?? [...state.inserted.values()][0]!;
    const duplicate = body(existing);
    const unique = spec.uniqueKeys.find((columns) => columns.every((c) => state.column(c).writable && duplicate[c] !== undefined && duplicate[c] !== null));
    if (unique) {
      const { status, error } = await state.from().insert(duplicate);
      assert.equal(status, 409, JSON.stringify(error));
      assert.equal(error?.code, '23505');
    }
    for (const fk of spec.foreignKeys) {
      const [orphan] = await acceptedRows(1, 7500);
      for (const c of fk.columns) orphan![c] = fixtureValue(state.column(c).fixture, 8_000_001);
      const { status, error } = await state.from().insert(orphan!);
      assert.ok(status === 409 || status === 400, JSON.stringify(error));
      if (status === 409) assert.equal(error?.code, '23503');
    }
    assert.equal(await state.checksum(), before);
  });
}
