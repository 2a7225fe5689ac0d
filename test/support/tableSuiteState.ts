import assert from 'node:assert/strict';
import { PostgrestClient, type PostgrestError } from '@supabase/postgrest-js';
import { quoteIdent } from '../../lib/db/sqlIdentifiers.ts';
import type { TableColumn, TableNarrowing } from '../../lib/postgrest/tableShape.ts';
import type { TablePlan } from '../../tools/addTable/tablePlan.ts';
import { contractCheckedFetch } from './checkedFetch.ts';
import type { RunningHttpServer } from './httpHarness.ts';
import type { FixtureType, Row, RowColumn, TableRows } from './tableRows.ts';
import type { TestDatabase, TestService } from './testService.ts';

/**
 * What the generated test (test/functions/<path>.test.ts) hands test/support/tableApiSuite.ts: the
 * table's DDL and what the generator read from the catalog, and the collection as the handlers
 * serve it (the owner's narrowing included).
 */
export interface GeneratedTable {
  /** `"schema"."table"` */
  table: string;
  path: string;
  ddl: string[];
  columns: RowColumn[];
  key: string[];
  keyParams: string[] | null;
  filters: Array<{ param: string; column: string; operator: '=' | '>' | '>=' | '<' | '<=' }>;
  foreignKeys: Array<{ columns: string[]; parent: string; parentColumns: string[] }>;
  uniqueKeys: string[][];
  updatable: string[];
  /** The operationIds the generator chose (the collection's in PostgREST's dialect, the item routes'). */
  operations: TablePlan['operationIds'];
  /** `<SINGULAR>_DIALECT` of functions/<singular>Dialect.ts, when the table has a collection. */
  dialect?: TableNarrowing & { columns: readonly TableColumn[] };
}

/** What `await`ing a postgrest-js builder gives, as the checks read it. */
export type ClientResult = { data: unknown; error: PostgrestError | null; status: number; count?: number | null };

/** The answer's rows; a refusal fails the test with what the service said. */
export function rowsOf(result: ClientResult, what: string): Row[] {
  assert.equal(result.error, null, `${what}: ${JSON.stringify(result.error)}`);
  assert.ok(Array.isArray(result.data), `${what}: rows, got ${JSON.stringify(result.data)}`);
  return result.data as Row[];
}

/** Query parameters PostgREST's dialect reserves: a column of the same name is not filterable by it. */
export const DIALECT_PARAMETERS = new Set(['select', 'order', 'limit', 'offset', 'columns', 'on_conflict', 'and', 'or']);

/** Values compare as what they mean: an instant, not its offset's spelling. */
export function canonical(type: FixtureType, value: unknown): unknown {
  if (value === null || value === undefined) return null;
  if (type.kind === 'timestamptz') return Date.parse(String(value));
  // The test's own pool reads bigint as text; the API sends JSON integers.
  if (type.kind === 'int2' || type.kind === 'int4' || type.kind === 'int8') return Number(value);
  if (type.kind === 'array' && Array.isArray(value)) return value.map((v) => canonical(type.element!, v));
  return value;
}

/**
 * The suite's running state (filled in its `before`) and the ways its checks look at the table:
 * through `@supabase/postgrest-js` (every answer checked against the contract), and behind the
 * API's back through the admin pool, each column in the wire form the API gives it.
 */
export class SuiteState {
  database!: TestDatabase;
  service!: TestService;
  rows!: TableRows;
  http!: RunningHttpServer;
  client!: PostgrestClient;
  /** The rows as inserted (what the API must give back), by key. */
  readonly inserted = new Map<string, Row>();
  readonly keyColumns: RowColumn[];
  /** `t."a", t."b"` (ctid without a key). */
  readonly keyOrder: string;

  constructor(readonly spec: GeneratedTable) {
    this.keyColumns = spec.key.map((name) => this.column(name));
    this.keyOrder = spec.key.map((k) => `t.${quoteIdent(k)}`).join(', ') || 'ctid';
  }

  /** Starts the client on the service listening at `http`. */
  connect(http: RunningHttpServer): void {
    this.http = http;
    // No retries: the client would retry a 503 after sleeping, and hide it from the check.
    this.client = new PostgrestClient(http.baseUrl, { fetch: contractCheckedFetch(this.service.contract), retry: false });
  }

  column(name: string): RowColumn {
    const column = this.spec.columns.find((c) => c.name === name);
    assert.ok(column, `${name} is a column of ${this.spec.table}`);
    return column;
  }

  /** `client.from('<path>')`: the collection as a front end reaches it. */
  from() {
    return this.client.from(this.spec.path.slice(1));
  }

  keyOf = (row: Row): string => JSON.stringify(this.keyColumns.map((c) => canonical(c.fixture, row[c.name])));

  /** The owner lets clients filter on `name` (functions/<singular>Dialect.ts): inside or=/and= at least. */
  allowsFilter(name: string): boolean {
    const allowed = this.spec.dialect?.filterable;
    return allowed === undefined || allowed.includes(name);
  }

  /** …and a filter parameter of its own can name it (not a column called like one of the dialect's parameters). */
  filterable(name: string): boolean {
    return !DIALECT_PARAMETERS.has(name) && this.allowsFilter(name);
  }

  orderable(name: string): boolean {
    const allowed = this.spec.dialect?.orderable;
    return allowed === undefined || allowed.includes(name);
  }

  private dialectColumn(name: string): TableColumn {
    const column = this.spec.dialect?.columns.find((c) => c.name === name);
    assert.ok(column, `${name} is in the table's dialect metadata`);
    return column;
  }

  /** SQL of the column's wire value (numeric as text, bytea as base64), as the API answers it. */
  wire(name: string): string {
    return (this.dialectColumn(name).output ?? '{}').replaceAll('{}', () => `t.${quoteIdent(name)}`);
  }

  /** SQL reading parameter `$n` as the column's type, as the dialect does. */
  input(name: string, n: number): string {
    const column = this.dialectColumn(name);
    return (column.input ?? `{}::${column.sql}`).replaceAll('{}', () => `$${n}`);
  }

  /** The rows `where` selects, as objects of `names` in their wire form; ordered by `order` (default the key). */
  async sqlRows(names: readonly string[], where = '', values: unknown[] = [], order = this.keyOrder): Promise<Row[]> {
    const members = names.map((name) => `'${name.replaceAll("'", "''")}', ${this.wire(name)}`).join(', ');
    const { rows } = await this.database.admin.query<{ row: Row }>(
      `SELECT json_build_object(${members}) AS row FROM ${this.spec.table} AS t ${where} ORDER BY ${order}`,
      values,
    );
    return rows.map((r) => r.row);
  }

  async sqlCount(where = '', values: unknown[] = []): Promise<number> {
    const { rows } = await this.database.admin.query<{ n: string }>(`SELECT count(*) AS n FROM ${this.spec.table} AS t ${where}`, values);
    return Number(rows[0]!.n);
  }

  /** A digest of the rows `where` selects: a check that a refused request changed nothing. */
  async checksum(where = '', values: unknown[] = []): Promise<string> {
    const { rows } = await this.database.admin.query<{ sum: string }>(
      `SELECT md5(coalesce(string_agg(t::text, ',' ORDER BY ${this.keyOrder}), '')) AS sum FROM ${this.spec.table} AS t ${where}`,
      values,
    );
    return rows[0]!.sum;
  }

  /**
   * Rows addressed by their keys in SQL: `WHERE (key of row 1) OR (key of row 2) …` and, for the
   * rest of the table, `WHERE NOT (…)`; the values from `$first`.
   */
  keysWhere(rows: readonly Row[], first = 1): { where: string; others: string; values: unknown[] } {
    const values: unknown[] = [];
    const terms = rows.map(
      (row) =>
        `(${this.spec.key
          .map((k) => {
            values.push(row[k]);
            return `t.${quoteIdent(k)} = ${this.input(k, first + values.length - 1)}`;
          })
          .join(' AND ')})`,
    );
    const condition = terms.join(' OR ') || 'false';
    return { where: `WHERE ${condition}`, others: `WHERE NOT (${condition})`, values };
  }

  /** The same rows for the dialect: `or=(and(a.eq."1",b.eq."x"),…)`'s body, for `.or()`. */
  keysFilter(rows: readonly Row[]): string {
    return rows.map((row) => `and(${this.spec.key.map((k) => `${dialectName(k)}.eq.${dialectValue(row[k])}`).join(',')})`).join(',');
  }

  /** A response row matches the row inserted with the same key, column by column. */
  assertRoundTrip(item: Row): void {
    const expected = this.inserted.get(this.keyOf(item));
    assert.ok(expected, `row ${this.keyOf(item)} was inserted by this test`);
    for (const column of this.spec.columns) {
      if (!(column.name in expected) || column.fixture.kind === 'text form') continue;
      assert.deepEqual(canonical(column.fixture, item[column.name]), canonical(column.fixture, expected[column.name]), `${column.name} round-trips`);
    }
  }

  /** The same rows, compared by what their values mean. */
  assertSameRows(actual: readonly Row[], expected: readonly Row[], what: string): void {
    const meaning = (row: Row) => Object.fromEntries(Object.entries(row).map(([name, value]) => [name, canonical(this.column(name).fixture, value)]));
    assert.deepEqual(actual.map(meaning), expected.map(meaning), what);
  }
}

/** A column name inside or=/and=, select= or order=: quoted when it is not a plain word. */
export const dialectName = (name: string) => (/^[A-Za-z_][A-Za-z0-9_]*$/.test(name) ? name : `"${name.replace(/(["\\])/g, '\\$1')}"`);

/** A value inside or=/and=, always double-quoted so commas, dots and parentheses in it stay in it. */
export const dialectValue = (value: unknown) => `"${String(value).replace(/(["\\])/g, '\\$1')}"`;
