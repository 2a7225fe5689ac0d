import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { PostgrestError } from '../../lib/postgrest/postgrestError.ts';
import { DEFAULT_BOUNDS, parseAccept, parsePreferences, parseQuery, parseRangeHeader } from '../../lib/postgrest/parseQuery.ts';
import type { Condition, Logic } from '../../lib/postgrest/syntaxTree.ts';

/** The refusal a parse throws: a PostgrestError with PostgREST's code, naming the parameter. */
function refusal(run: () => unknown): PostgrestError {
  try {
    run();
  } catch (err) {
    assert.ok(err instanceof PostgrestError, `expected a PostgrestError, got ${String(err)}`);
    return err;
  }
  assert.fail('expected a refusal');
}

const parse = (search: string, headers: Record<string, string> = {}) => parseQuery(search, headers);

describe('horizontal filters', () => {
  test('a column, an operator and a value; not. in front', () => {
    const [eq, not] = parse('id=eq.3&name=not.like.*a*').filters as Condition[];
    assert.deepEqual(eq, { kind: 'condition', field: { column: 'id', path: [] }, negated: false, predicate: { op: 'eq', value: '3' }, parameter: 'id' });
    assert.equal(not?.negated, true);
    assert.deepEqual(not?.predicate, { op: 'like', value: '*a*' });
  });

  test('the value is everything after the operator, dots and commas included', () => {
    const [c] = parse(`name=eq.${encodeURIComponent('a.b,c(d)')}`).filters as Condition[];
    assert.deepEqual(c?.predicate, { op: 'eq', value: 'a.b,c(d)' });
  });

  test('in.(…) with quoted items; is; isdistinct; containment; quantifiers', () => {
    const filters = parse('id=in.(1,2,"a,b","q\\"x")&x=is.NULL&y=isdistinct.4&t=cs.{a,b}&u=like(any).{a*,b*}').filters as Condition[];
    assert.deepEqual(filters[0]?.predicate, { op: 'in', values: ['1', '2', 'a,b', 'q"x'] });
    assert.deepEqual(filters[1]?.predicate, { op: 'is', value: 'null' });
    assert.deepEqual(filters[2]?.predicate, { op: 'isdistinct', value: '4' });
    assert.deepEqual(filters[3]?.predicate, { op: 'cs', value: '{a,b}' });
    assert.deepEqual(filters[4]?.predicate, { op: 'like', value: '{a*,b*}', quantifier: 'any', values: ['a*', 'b*'] });
  });

  test('full-text search with and without a configuration', () => {
    const [a, b] = parse('doc=fts(english).cat&doc=wfts.fat cat').filters as Condition[];
    assert.deepEqual(a?.predicate, { op: 'fts', value: 'cat', language: 'english' });
    assert.deepEqual(b?.predicate, { op: 'wfts', value: 'fat cat' });
  });

  test('JSON paths on the left', () => {
    const [c] = parse('meta->a->>b=eq.x&meta->0=eq.1').filters as Condition[];
    assert.deepEqual(c?.field, {
      column: 'meta',
      path: [
        { arrow: '->', key: 'a' },
        { arrow: '->>', key: 'b' },
      ],
    });
    refusal(() => parse('meta->>a->b=eq.1'));
  });

  test('nested or=(…) and and(…), negated groups, quoted values inside', () => {
    const [or] = parse('or=(id.lt.3,and(id.gt.5,name.eq."a,b"),not.and(x.is.null,y.in.(1,2)))').filters as Logic[];
    assert.equal(or?.op, 'or');
    assert.equal(or?.children.length, 3);
    const and = or?.children[1] as Logic;
    assert.deepEqual((and.children[1] as Condition).predicate, { op: 'eq', value: 'a,b' });
    const notAnd = or?.children[2] as Logic;
    assert.equal(notAnd.negated, true);
    assert.deepEqual((notAnd.children[1] as Condition).predicate, { op: 'in', values: ['1', '2'] });
    const [notOr] = parse('not.or=(a.eq.1,b.eq.2)').filters as Logic[];
    assert.equal(notOr?.negated, true);
  });
});

describe('select, order, paging', () => {
  test('columns, aliases, casts and JSON paths', () => {
    assert.deepEqual(parse('select=id,label:name,price::text,meta->>k,"odd col"').select, [
      { kind: 'column', field: { column: 'id', path: [] } },
      { kind: 'column', field: { column: 'name', path: [] }, alias: 'label' },
      { kind: 'column', field: { column: 'price', path: [] }, cast: 'text' },
      { kind: 'column', field: { column: 'meta', path: [{ arrow: '->>', key: 'k' }] } },
      { kind: 'column', field: { column: 'odd col', path: [] } },
    ]);
    assert.deepEqual(parse('').select, [{ kind: 'star' }]);
  });

  test('a cast outside the allow-list, embedding and aggregates are refused as PGRST100', () => {
    const cast = refusal(() => parse('select=id::regclass'));
    assert.equal(cast.code, 'PGRST100');
    assert.equal(cast.field, 'select');
    assert.equal(refusal(() => parse('select=id,orders(*)')).code, 'PGRST100');
    assert.equal(refusal(() => parse('select=count()')).code, 'PGRST100');
    assert.equal(refusal(() => parse('select=id::text;drop table x')).code, 'PGRST100');
  });

  test('order with several keys, directions and nulls placement', () => {
    assert.deepEqual(parse('order=a.desc.nullslast,b,c.nullsfirst').order, [
      { field: { column: 'a', path: [] }, direction: 'desc', nulls: 'last' },
      { field: { column: 'b', path: [] } },
      { field: { column: 'c', path: [] }, nulls: 'first' },
    ]);
    assert.equal(refusal(() => parse('order=a.sideways')).field, 'order');
  });

  test('limit and offset, intersected with the Range header', () => {
    assert.deepEqual(parse('limit=10&offset=5').range, { offset: 5, limit: 10 });
    assert.deepEqual(parse('', { range: '0-9' }).range, { offset: 0, limit: 10 });
    assert.deepEqual(parse('limit=5', { range: '2-20' }).range, { offset: 2, limit: 3 });
    assert.deepEqual(parseRangeHeader('items=10-'), { offset: 10 });
    assert.equal(parseRangeHeader('bytes=a-b'), undefined);
    assert.equal(refusal(() => parseRangeHeader('9-2')).status, 416);
    assert.equal(refusal(() => parse('limit=-1')).field, 'limit');
    assert.equal(refusal(() => parse('limit=1&limit=2')).field, 'limit');
  });
});

describe('headers', () => {
  test('Prefer: every preference the dialect takes, and Preference-Applied', () => {
    const prefs = parsePreferences('return=representation, count=exact,resolution=merge-duplicates, missing=default, handling=strict, max-affected=5');
    assert.deepEqual(
      { ...prefs, applied: undefined },
      { return: 'representation', count: 'exact', resolution: 'merge-duplicates', missing: 'default', handling: 'strict', maxAffected: 5, applied: undefined },
    );
    assert.equal(prefs.applied.length, 6);
    assert.deepEqual(parsePreferences('bogus=1, count=exact').applied, ['count=exact'], 'lenient: ignored');
    assert.equal(refusal(() => parsePreferences('handling=strict, tx=rollback')).code, 'PGRST122');
  });

  test('Accept: array, one object, CSV; anything else is 406', () => {
    assert.equal(parseAccept(undefined).shape, 'array');
    assert.equal(parseAccept('application/vnd.pgrst.object+json').shape, 'object');
    assert.deepEqual(parseAccept('application/vnd.pgrst.object+json;nulls=stripped'), { shape: 'object', stripNulls: true });
    assert.equal(parseAccept('text/csv').shape, 'csv');
    assert.equal(parseAccept('text/html, */*;q=0.8').shape, 'array');
    const refused = refusal(() => parseAccept('image/png'));
    assert.equal(refused.status, 406);
    assert.equal(refused.code, 'PGRST107');
  });
});

describe('hostile grammar is refused before any SQL, as a 4xx naming the parameter', () => {
  const hostile: Array<[string, string]> = [
    ['id=eq', 'id'],
    ['id=zz.1', 'id'],
    ['id=eq(any).1', 'id'],
    ['or=(id.eq.1', 'or'],
    ['or=id.eq.1)', 'or'],
    ['or=(id.eq.1))', 'or'],
    ['or=()', 'or'],
    ['or=(id)', 'or'],
    ['id=in.(1,2', 'id'],
    ['id=in.1,2', 'id'],
    ['id=is.maybe', 'id'],
    ['or=(a.eq."x)', 'or'],
    ['select=id)', 'select'],
    ['order=(id', 'order'],
    ['=eq.1', 'query'],
    [`x=eq.${'a'.repeat(10_000)}`, 'query'],
    [`or=${'and('.repeat(20)}a.eq.1${')'.repeat(20)}`, 'or'],
    [Array.from({ length: 101 }, (_, i) => `c${i}=eq.1`).join('&'), 'c100'],
    [`id=fts(english'--).x`, 'id'],
  ];
  for (const [search, field] of hostile) {
    test(`${search.slice(0, 60)}${search.length > 60 ? '…' : ''}`, () => {
      const err = refusal(() => parse(search));
      assert.ok(err.status >= 400 && err.status < 500, `status ${err.status}`);
      assert.equal(err.field, field);
      assert.match(err.code, /^PGRST1\d\d$/);
      assert.ok(err.message.length < 300, 'a long value is not echoed back whole');
    });
  }

  test('the bounds are settings', () => {
    refusal(() => parseQuery('a=eq.1&b=eq.2', {}, { ...DEFAULT_BOUNDS, maxConditions: 1 }));
  });
});
