import type pg from 'pg';
import { quoteIdent } from '../../lib/db/sqlIdentifiers.ts';

/**
 * Rows a generated table accepts, for the suite in tableApiSuite.ts. Values come from each column's
 * type and what the generator read of its checks (bounds, IN lists, lengths: tools/addTable/checkConstraints.ts);
 * foreign keys take parent rows that exist, or get a parent row inserted; each row is tried in a
 * transaction, and a column a constraint refuses is drawn again (values read from the table, then
 * other shapes of value, then NULL where allowed) instead of giving up on the row.
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
  /** From the table's and its domains' checks. */
  min?: number | string;
  max?: number | string;
  exclusiveMin?: boolean;
  exclusiveMax?: boolean;
  values?: unknown[];
  not?: unknown[];
  minLength?: number;
  /** Values read from the table for a check the generator could not read (aligned by row across its columns). */
  samples?: unknown[];
}

export interface RowColumn {
  name: string;
  fixture: FixtureType;
  notNull: boolean;
  filledByDatabase: boolean;
  writable: boolean;
}

export interface RowTable {
  /** `"schema"."table"` */
  table: string;
  columns: RowColumn[];
  key: string[];
  foreignKeys: Array<{ columns: string[]; parent: string; parentColumns: string[] }>;
  uniqueKeys: string[][];
}

export type Row = Record<string, unknown>;

const pad = (n: number, width: number) => String(n).padStart(width, '0');
const INTEGERS: Record<string, [number, number]> = {
  int2: [-32768, 32767],
  int4: [-2147483648, 2147483647],
  int8: [-Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
};
const DAY = 86_400_000;

/** A value of the type alone, ignoring checks. */
function typeValue(type: FixtureType, i: number): unknown {
  const day = Date.UTC(2024, 0, 1) + i * DAY;
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
      return new Date((i * 3_737_000) % DAY).toISOString().slice(11, 19);
    case 'timetz':
      return `${new Date((i * 3_737_000) % DAY).toISOString().slice(11, 19)}+00`;
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

/** The i-th value inside a check's bounds (distinct for consecutive i while the range allows), or undefined without bounds. */
function boundedValue(type: FixtureType, i: number): unknown {
  if (type.min === undefined && type.max === undefined) return undefined;
  const instant = type.kind === 'date' || type.kind === 'timestamp' || type.kind === 'timestamptz';
  const integer = type.kind in INTEGERS || (type.kind === 'numeric' && type.scale === 0);
  if (!instant && !integer && !['numeric', 'float4', 'float8'].includes(type.kind)) return undefined;
  const step = stepOf(type, instant, integer);
  const toSteps = (bound: number | string) =>
    (instant ? Date.parse(String(bound).length === 10 ? `${bound}T00:00:00Z` : zoned(String(bound))) : Number(bound)) / step;
  // Bounds in steps, inside the check: a bound that falls between two steps rounds inwards.
  let lo = type.min === undefined ? undefined : toSteps(type.min);
  let hi = type.max === undefined ? undefined : toSteps(type.max);
  if (lo !== undefined) lo = Number.isInteger(lo) ? lo + (type.exclusiveMin ? 1 : 0) : Math.ceil(lo);
  if (hi !== undefined) hi = Number.isInteger(hi) ? hi - (type.exclusiveMax ? 1 : 0) : Math.floor(hi);
  // The type's own range (smallint, numeric(p,s)): a one-sided check walks away from its bound only as far as that.
  const limits = typeLimits(type);
  const least = Math.max(lo ?? -Infinity, limits ? Math.ceil(limits[0] / step) : -Infinity);
  const most = Math.min(hi ?? Infinity, limits ? Math.floor(limits[1] / step) : Infinity);
  let steps = lo !== undefined ? lo + i : hi! - i;
  if (steps < least || steps > most) steps = Number.isFinite(least) ? least + (i % (most - least + 1 || 1)) : most - i;
  if (instant) {
    const iso = new Date(steps * step).toISOString();
    return type.kind === 'date' ? iso.slice(0, 10) : type.kind === 'timestamp' ? iso.slice(0, 19) : `${iso.slice(0, 19)}+00:00`;
  }
  if (type.kind === 'numeric') return type.scale !== undefined ? (steps * step).toFixed(type.scale) : String(steps * step);
  return steps * step;
}

/** Values move in whole steps: a day, an hour, an integer, the numeric's last digit, a quarter. */
function stepOf(type: FixtureType, instant: boolean, integer: boolean): number {
  if (instant) return type.kind === 'date' ? DAY : 3_600_000;
  if (integer) return 1;
  return type.kind === 'numeric' && type.scale !== undefined ? 10 ** -type.scale : 0.25;
}

/** The smallest and largest value the type holds, where it is bounded (integers, numeric(p,s) short of its last step). */
function typeLimits(type: FixtureType): [number, number] | undefined {
  if (INTEGERS[type.kind]) return INTEGERS[type.kind];
  if (type.kind !== 'numeric' || type.precision === undefined) return undefined;
  const whole = 10 ** (type.precision - (type.scale ?? 0));
  const last = 10 ** -(type.scale ?? 0);
  return [-whole + last, whole - last];
}

/** `2030-01-01T10:00:00+00` → a string Date.parse reads; a local timestamp is read as UTC. */
function zoned(text: string): string {
  if (/[+-]\d{2}$/.test(text)) return `${text}:00`;
  return /[zZ]|[+-]\d{2}:\d{2}$/.test(text) ? text : `${text}Z`;
}

/** A text value stretched or cut to the check's lengths, still telling rows apart. */
function fitLength(type: FixtureType, value: unknown, i: number): unknown {
  if (typeof value !== 'string' || !['text', 'varchar', 'text form'].includes(type.kind)) return value;
  const min = type.minLength ?? 0;
  const max = type.maxLength ?? Infinity;
  let text = value;
  if (text.length > max) text = i.toString(36).slice(-max);
  if (text.length < min) text = text.padEnd(min, 'x');
  return text;
}

const sameValue = (a: unknown, b: unknown) => String(a) === String(b);

/** A valid value of `type` for the i-th generated row, as the API sends and accepts it. */
export function fixtureValue(type: FixtureType, i: number): unknown {
  const refused = (value: unknown) => type.not?.some((n) => sameValue(n, value)) ?? false;
  if (type.values?.length) {
    const allowed = type.values.filter((v) => !refused(v));
    return allowed[i % allowed.length];
  }
  let value: unknown;
  for (let k = 0; k < 50 && (k === 0 || refused(value)); k++) {
    const n = i + k * 1009;
    value = fitLength(type, boundedValue(type, n) ?? typeValue(type, n), n);
  }
  return value;
}

/** Other shapes of value, for a check the generator could not read (`~ '^[A-Z]'`, `LIKE '%@%'`, …). */
function variant(type: FixtureType, i: number, attempt: number): unknown {
  if ((type.kind === 'text' || type.kind === 'varchar') && !type.values?.length) {
    const shapes = [`T${i}`, `${i}`, `t${i}`, `Text ${i}`, `TEXT${i}`, `text-${i}`, `user${i}@example.com`, `https://example.com/${i}`, `t_${i}`, `X`];
    return fitLength(type, shapes[(attempt - 1) % shapes.length], i);
  }
  return fixtureValue(type, i + attempt * 7919);
}

/** SQL reading parameter `$n` as the column's type (what the generated handlers do). */
export function sqlInput(type: FixtureType, n: number): string {
  if (type.kind === 'bytea') return `decode($${n}, 'base64')`;
  return `$${n}::${type.sql}`;
}

export const toParam = (type: FixtureType, value: unknown) => (type.kind === 'json' && value !== null ? JSON.stringify(value) : value);

/** A parent column's value in the wire form of the child column that references it. */
function wireSql(type: FixtureType, expression: string): string {
  if (type.kind === 'numeric') return `${expression}::text`;
  if (type.kind === 'bytea') return `translate(encode(${expression}, 'base64'), E'\\n', '')`;
  return expression;
}

const MAX_ATTEMPTS = 40;

/** Makes rows `table` accepts in the database `admin` reaches. Call prepare() once, after the DDL. */
export class TableRows {
  /** Constraint name (the table's, and its columns' domains') → the columns it covers. */
  private readonly constraintColumns = new Map<string, string[]>();
  /** Parents that held rows before the suite inserted any: their rows are referenced, none are added. */
  private readonly populatedParents = new Set<string>();

  constructor(
    private readonly admin: pg.Pool,
    private readonly table: RowTable,
  ) {}

  private column(name: string): RowColumn {
    return this.table.columns.find((c) => c.name === name)!;
  }

  async prepare(): Promise<void> {
    const { rows } = await this.admin.query<{ name: string; columns: string[] }>(
      `SELECT con.conname AS name, ARRAY(SELECT a.attname::text FROM pg_attribute a WHERE a.attrelid = con.conrelid AND a.attnum = ANY (con.conkey)) AS columns
       FROM pg_constraint con WHERE con.conrelid = $1::regclass
       UNION ALL
       SELECT con.conname, array_agg(a.attname::text) FROM pg_attribute a
       CROSS JOIN LATERAL (
         WITH RECURSIVE chain(oid) AS (
           SELECT CASE WHEN t.typcategory = 'A' AND t.typelem <> 0 THEN t.typelem ELSE t.oid END FROM pg_type t WHERE t.oid = a.atttypid
           UNION SELECT t.typbasetype FROM chain JOIN pg_type t ON t.oid = chain.oid WHERE t.typtype = 'd')
         SELECT oid FROM chain) AS d
       JOIN pg_constraint con ON con.contypid = d.oid
       WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped GROUP BY con.conname`,
      [this.table.table],
    );
    for (const row of rows) this.constraintColumns.set(row.name, [...(this.constraintColumns.get(row.name) ?? []), ...row.columns]);
    for (const fk of this.table.foreignKeys) {
      if (fk.parent === this.table.table) continue;
      const { rows: found } = await this.admin.query(`SELECT 1 FROM ${fk.parent} LIMIT 1`);
      if (found.length > 0) this.populatedParents.add(fk.parent);
    }
  }

  /** The i-th row before any constraint has refused it: nullable columns outside keys are null now and then, so null travels too. */
  private firstDraw(i: number): Row {
    const row: Row = {};
    for (const column of this.table.columns) {
      if (!column.writable || column.filledByDatabase) continue;
      const keyLike = this.table.uniqueKeys.some((k) => k.includes(column.name)) || this.table.foreignKeys.some((f) => f.columns.includes(column.name));
      row[column.name] = !column.notNull && !keyLike && i % 5 === 4 ? null : fixtureValue(column.fixture, i);
    }
    return row;
  }

  /**
   * Inserts the i-th row (and any parent rows its foreign keys need); undefined when no draw was
   * accepted. With `keep: false` the row itself is rolled back (parents stay): a body the API will accept.
   */
  async insert(i: number, { keep = true } = {}): Promise<Row | undefined> {
    const row = this.firstDraw(i);
    const draws = new Map<string, number>();
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const client = await this.admin.connect();
      try {
        await client.query('BEGIN');
        for (const fk of this.table.foreignKeys) await this.referenceParent(client, fk, row, i, Math.max(0, ...fk.columns.map((c) => draws.get(c) ?? 0)));
        await client.query('SAVEPOINT candidate');
        try {
          const { rows } = await client.query(this.insertStatement(row), this.params(row));
          if (!keep) await client.query('ROLLBACK TO SAVEPOINT candidate');
          await client.query('COMMIT');
          return keep ? { ...row, ...rows[0] } : { ...row };
        } catch (err) {
          await client.query('ROLLBACK');
          const { code, constraint, column } = err as { code?: string; constraint?: string; column?: string };
          if (!/^2[23]/.test(String(code))) throw err;
          // Draw again what the refusal names; when it names nothing (a value out of a type's range), every column.
          const named = ((constraint && this.constraintColumns.get(constraint)) || (column ? [column] : [])).filter((n) => n in row);
          for (const name of named.length > 0 ? named : Object.keys(row)) {
            const n = (draws.get(name) ?? 0) + 1;
            draws.set(name, n);
            row[name] = this.redraw(this.column(name), i, n);
          }
        }
      } finally {
        client.release();
      }
    }
    return undefined;
  }

  /** The n-th other value of a refused column: the table's own values first, then other shapes, NULL where allowed. */
  private redraw(column: RowColumn, i: number, n: number): unknown {
    const samples = column.fixture.samples ?? [];
    if (n <= samples.length) return samples[(i + n - 1) % samples.length];
    const m = n - samples.length;
    if (!column.notNull && m % 4 === 0) return null;
    return variant(column.fixture, i, m);
  }

  /**
   * Points the row's foreign key at a parent row: one that existed before the suite (read now), else
   * a new parent row holding the row's values (a stand-in parent from the generated DDL), else one
   * of this table's own rows (a self reference) or NULL.
   */
  private async referenceParent(client: pg.PoolClient, fk: RowTable['foreignKeys'][number], row: Row, i: number, attempt: number): Promise<void> {
    const types = fk.columns.map((c) => this.column(c).fixture);
    const self = fk.parent === this.table.table;
    if (fk.columns.some((c) => row[c] === null || row[c] === undefined)) return;
    if (!self && !this.populatedParents.has(fk.parent)) {
      await client.query('SAVEPOINT parent');
      try {
        await client.query(
          `INSERT INTO ${fk.parent} (${fk.parentColumns.map(quoteIdent).join(', ')}) VALUES (${types.map((t, n) => sqlInput(t, n + 1)).join(', ')}) ON CONFLICT DO NOTHING`,
          fk.columns.map((c, n) => toParam(types[n]!, row[c])),
        );
        return;
      } catch {
        await client.query('ROLLBACK TO SAVEPOINT parent');
      }
    }
    const { rows } = await client.query<{ key: string }>(
      `SELECT json_build_array(${fk.parentColumns.map((c, n) => wireSql(types[n]!, `p.${quoteIdent(c)}`)).join(', ')})::text AS key
       FROM ${fk.parent} AS p WHERE ${fk.parentColumns.map((c) => `p.${quoteIdent(c)} IS NOT NULL`).join(' AND ')} ORDER BY 1 LIMIT 100`,
    );
    if (rows.length > 0) {
      const key = JSON.parse(rows[(i + attempt) % rows.length]!.key) as unknown[];
      fk.columns.forEach((c, n) => {
        row[c] = key[n];
      });
    } else if (self && fk.parentColumns.every((c) => row[c] !== undefined && row[c] !== null)) {
      fk.columns.forEach((c, n) => {
        row[c] = row[fk.parentColumns[n]!];
      });
    } else if (fk.columns.every((c) => !this.column(c).notNull)) {
      for (const c of fk.columns) row[c] = null;
    }
  }

  private insertStatement(row: Row): string {
    const names = Object.keys(row);
    const returning = this.table.key.length ? `RETURNING ${this.table.key.map(quoteIdent).join(', ')}` : '';
    return names.length
      ? `INSERT INTO ${this.table.table} (${names.map(quoteIdent).join(', ')}) VALUES (${names.map((name, n) => sqlInput(this.column(name).fixture, n + 1)).join(', ')}) ${returning}`
      : `INSERT INTO ${this.table.table} DEFAULT VALUES ${returning}`;
  }

  private params(row: Row): unknown[] {
    return Object.keys(row).map((name) => toParam(this.column(name).fixture, row[name]));
  }
}
