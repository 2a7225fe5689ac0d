import type pg from 'pg';
import { isSeedMarker } from '../../lib/db/seedTrips.ts';

/**
 * What `npm run add-table` knows about a table, read from pg_catalog with the login the service
 * itself uses: columns and their types (domains and arrays resolved), defaults, keys, unique
 * constraints, indexes, checks, foreign keys and comments.
 */
export interface TableName {
  schema: string;
  table: string;
}

/** A type as Postgres declares it, resolved through domains and arrays. */
export interface PgType {
  /** The built-in name at the bottom (`int4`, `numeric`, `timestamptz`), or the enum's / other type's own name. */
  name: string;
  /** `format_type` without a modifier, qualified and quoted where needed: usable in `$1::<sql>`. */
  sql: string;
  /** As declared, with its modifier: `character varying(20)`, `numeric(10,2)`. */
  declared: string;
  kind: 'base' | 'enum' | 'array' | 'domain' | 'other';
  /** varchar(n) / char(n). */
  maxLength?: number;
  precision?: number;
  scale?: number;
  enumLabels?: string[];
  element?: PgType;
  /** A domain's base type, its NOT NULL and its checks. */
  base?: PgType;
  domainNotNull?: boolean;
  domainChecks?: string[];
  /** The names of those checks (a refusal names the check, which the generated code maps to columns). */
  domainCheckNames?: string[];
  /** For the generated test's DDL: `CREATE TYPE` / `CREATE DOMAIN` statements this type needs. */
  schema: string;
}

export interface CatalogColumn {
  name: string;
  type: PgType;
  notNull: boolean;
  /** The default expression as Postgres prints it (`nextval(…)`, `gen_random_uuid()`), null when none. */
  defaultExpr: string | null;
  identity: 'always' | 'by default' | null;
  /** `GENERATED ALWAYS AS (expr) STORED`: the expression. */
  generatedExpr: string | null;
  /** A serial column: an integer whose default is nextval of a sequence it owns. */
  serial: boolean;
  comment: string | null;
}

interface CatalogConstraint {
  name: string;
  type: 'primary key' | 'unique' | 'check' | 'foreign key' | 'exclusion';
  columns: string[];
  definition: string;
  references?: { schema: string; table: string; columns: string[]; columnTypes: string[] };
}

interface CatalogIndex {
  name: string;
  definition: string;
  method: string;
  unique: boolean;
  /** The first column when the index starts with a plain column (not an expression) and is not partial. */
  leadingColumn: string | null;
  columns: string[];
  /** The index of a primary key or unique constraint (recreated with the constraint). */
  backsConstraint: boolean;
}

export interface CatalogTable extends TableName {
  kind: 'table' | 'view' | 'materialized view' | 'foreign table' | 'partitioned table';
  /** The table's comment as stored (recreated as it is in the generated test's DDL). */
  comment: string | null;
  /** The comment as documentation: none when it is the synthetic trips' seed marker. */
  description: string | null;
  columns: CatalogColumn[];
  primaryKey: string[];
  constraints: CatalogConstraint[];
  indexes: CatalogIndex[];
}

/** The table is missing or the login may not read it: one line, naming it. */
export class TableNotReadable extends Error {}

const RELKINDS: Record<string, CatalogTable['kind']> = { r: 'table', p: 'partitioned table', v: 'view', m: 'materialized view', f: 'foreign table' };
const CONSTRAINT_TYPES: Record<string, CatalogConstraint['type']> = { p: 'primary key', u: 'unique', c: 'check', f: 'foreign key', x: 'exclusion' };

/** `schema.table`, `table` (public) or quoted parts: `"My Schema"."Order Items"`. */
export function parseTableName(text: string): TableName {
  const parts: string[] = [];
  let rest = text.trim();
  while (rest.length > 0) {
    let part: string;
    if (rest.startsWith('"')) {
      const match = /^"((?:[^"]|"")+)"/.exec(rest);
      if (!match) throw new Error(`${text}: an unterminated quoted name`);
      part = match[1]!.replace(/""/g, '"');
      rest = rest.slice(match[0].length);
    } else {
      const match = /^[^."]+/.exec(rest);
      if (!match) throw new Error(`${text}: expected <schema>.<table>`);
      part = match[0];
      rest = rest.slice(part.length);
    }
    parts.push(part);
    if (rest.startsWith('.')) rest = rest.slice(1);
    else if (rest.length > 0) throw new Error(`${text}: expected <schema>.<table>`);
  }
  if (parts.length === 1) return { schema: 'public', table: parts[0]! };
  if (parts.length === 2) return { schema: parts[0]!, table: parts[1]! };
  throw new Error(`${text}: expected <schema>.<table>`);
}

type Queryable = Pick<pg.ClientBase, 'query'>;

async function readType(db: Queryable, oid: number, typmod: number, seen = new Map<string, PgType>()): Promise<PgType> {
  const memo = `${oid}:${typmod}`;
  const known = seen.get(memo);
  if (known) return known;
  const { rows } = await db.query<{
    typname: string;
    nspname: string;
    typtype: string;
    typcategory: string;
    typelem: number;
    typbasetype: number;
    typtypmod: number;
    typnotnull: boolean;
    declared: string;
    bare: string;
  }>(
    `SELECT t.typname, n.nspname, t.typtype, t.typcategory, t.typelem::int AS typelem, t.typbasetype::int AS typbasetype,
            t.typtypmod, t.typnotnull, format_type(t.oid, $2) AS declared, format_type(t.oid, NULL) AS bare
     FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace WHERE t.oid = $1`,
    [oid, typmod < 0 ? null : typmod],
  );
  const row = rows[0];
  if (!row) throw new Error(`type ${oid} not found in pg_type`);
  // `character` without a length is char(1): a cast to it would cut every value to one character.
  const sql = row.typname === 'bpchar' ? 'bpchar' : row.typname === '_bpchar' ? 'bpchar[]' : row.bare;
  const type: PgType = { name: row.typname, sql, declared: row.declared, kind: 'other', schema: row.nspname };
  if (row.typtype === 'd') {
    type.kind = 'domain';
    type.base = await readType(db, row.typbasetype, row.typtypmod, seen);
    type.domainNotNull = row.typnotnull;
    const checks = await db.query<{ name: string; def: string }>(
      `SELECT conname AS name, pg_get_constraintdef(oid) AS def FROM pg_constraint WHERE contypid = $1 AND contype = 'c' ORDER BY conname`,
      [oid],
    );
    type.domainChecks = checks.rows.map((r) => r.def);
    type.domainCheckNames = checks.rows.map((r) => r.name);
  } else if (row.typtype === 'e') {
    type.kind = 'enum';
    const labels = await db.query<{ label: string }>(`SELECT enumlabel AS label FROM pg_enum WHERE enumtypid = $1 ORDER BY enumsortorder`, [oid]);
    type.enumLabels = labels.rows.map((r) => r.label);
  } else if (row.typcategory === 'A' && row.typelem !== 0) {
    type.kind = 'array';
    type.element = await readType(db, row.typelem, typmod, seen);
  } else if (row.nspname === 'pg_catalog') {
    type.kind = 'base';
    if ((row.typname === 'varchar' || row.typname === 'bpchar') && typmod >= 4) type.maxLength = typmod - 4;
    if (row.typname === 'numeric' && typmod >= 4) {
      type.precision = ((typmod - 4) >> 16) & 0xffff;
      type.scale = (typmod - 4) & 0xffff;
    }
  }
  seen.set(memo, type);
  return type;
}

/**
 * Reads one table. Throws TableNotReadable (one line naming the table) when it does not exist or
 * the login may not SELECT from it.
 */
export async function readTable(db: Queryable, name: TableName): Promise<CatalogTable> {
  const shown = `${name.schema}.${name.table}`;
  const found = await db.query<{ oid: number; relkind: string; comment: string | null; readable: boolean; login: string }>(
    `SELECT c.oid::int AS oid, c.relkind, obj_description(c.oid, 'pg_class') AS comment,
            has_table_privilege(c.oid, 'SELECT') AND has_schema_privilege(n.oid, 'USAGE') AS readable, current_user AS login
     FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p', 'v', 'm', 'f')`,
    [name.schema, name.table],
  );
  const relation = found.rows[0];
  if (!relation) {
    const login = await db.query<{ login: string }>('SELECT current_user AS login');
    throw new TableNotReadable(`Table ${shown} does not exist in database ${await databaseName(db)} (or ${login.rows[0]!.login} cannot see it)`);
  }
  if (!relation.readable) throw new TableNotReadable(`Table ${shown} exists but ${relation.login} may not read it (no SELECT privilege)`);

  const columnRows = await db.query<{
    name: string;
    type_oid: number;
    typmod: number;
    not_null: boolean;
    default_expr: string | null;
    identity: string;
    generated: string;
    comment: string | null;
    owned_sequence: string | null;
  }>(
    `SELECT a.attname AS name, a.atttypid::int AS type_oid, a.atttypmod AS typmod, a.attnotnull AS not_null,
            pg_get_expr(d.adbin, d.adrelid) AS default_expr, a.attidentity AS identity, a.attgenerated AS generated,
            col_description(a.attrelid, a.attnum) AS comment,
            pg_get_serial_sequence(format('%I.%I', $2::text, $3::text), a.attname) AS owned_sequence
     FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
     WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`,
    [relation.oid, name.schema, name.table],
  );
  const types = new Map<string, PgType>();
  const columns: CatalogColumn[] = [];
  for (const row of columnRows.rows) {
    const type = await readType(db, row.type_oid, row.typmod, types);
    const generated = row.generated === 's';
    columns.push({
      name: row.name,
      type,
      notNull: row.not_null,
      defaultExpr: generated ? null : row.default_expr,
      identity: row.identity === 'a' ? 'always' : row.identity === 'd' ? 'by default' : null,
      generatedExpr: generated ? row.default_expr : null,
      serial: row.identity === '' && row.owned_sequence !== null && /^nextval\(/.test(row.default_expr ?? ''),
      comment: row.comment,
    });
  }

  const constraintRows = await db.query<{
    name: string;
    contype: string;
    definition: string;
    columns: string[];
    ref_schema: string | null;
    ref_table: string | null;
    ref_columns: string[] | null;
    ref_types: string[] | null;
  }>(
    `SELECT con.conname AS name, con.contype, pg_get_constraintdef(con.oid) AS definition,
            ARRAY(SELECT a.attname::text FROM unnest(con.conkey) WITH ORDINALITY AS k(attnum, ord)
                  JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.attnum ORDER BY k.ord) AS columns,
            rn.nspname AS ref_schema, rc.relname AS ref_table,
            ARRAY(SELECT a.attname::text FROM unnest(con.confkey) WITH ORDINALITY AS k(attnum, ord)
                  JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.attnum ORDER BY k.ord) AS ref_columns,
            ARRAY(SELECT format_type(a.atttypid, a.atttypmod) FROM unnest(con.confkey) WITH ORDINALITY AS k(attnum, ord)
                  JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.attnum ORDER BY k.ord) AS ref_types
     FROM pg_constraint con
     LEFT JOIN pg_class rc ON rc.oid = con.confrelid LEFT JOIN pg_namespace rn ON rn.oid = rc.relnamespace
     WHERE con.conrelid = $1 AND con.contype IN ('p', 'u', 'c', 'f', 'x')
     ORDER BY position(con.contype IN 'pufcx'), con.conname`,
    [relation.oid],
  );
  const constraints: CatalogConstraint[] = constraintRows.rows.map((row) => ({
    name: row.name,
    type: CONSTRAINT_TYPES[row.contype]!,
    columns: row.columns,
    definition: row.definition,
    ...(row.contype === 'f' && row.ref_table
      ? { references: { schema: row.ref_schema!, table: row.ref_table, columns: row.ref_columns ?? [], columnTypes: row.ref_types ?? [] } }
      : {}),
  }));

  const indexRows = await db.query<{
    name: string;
    definition: string;
    method: string;
    unique: boolean;
    leading_column: string | null;
    columns: string[];
    backs_constraint: boolean;
  }>(
    `SELECT ic.relname AS name, pg_get_indexdef(i.indexrelid) AS definition, am.amname AS method, i.indisunique AS unique,
            CASE WHEN i.indpred IS NULL AND i.indkey[0] <> 0
                 THEN (SELECT a.attname::text FROM pg_attribute a WHERE a.attrelid = i.indrelid AND a.attnum = i.indkey[0]) END AS leading_column,
            ARRAY(SELECT coalesce(a.attname::text, '(expression)') FROM unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
                  LEFT JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
                  WHERE k.ord <= i.indnkeyatts ORDER BY k.ord) AS columns,
            EXISTS (SELECT 1 FROM pg_constraint con WHERE con.conindid = i.indexrelid AND con.conrelid = i.indrelid) AS backs_constraint
     FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid JOIN pg_am am ON am.oid = ic.relam
     WHERE i.indrelid = $1 ORDER BY ic.relname`,
    [relation.oid],
  );

  return {
    ...name,
    kind: RELKINDS[relation.relkind]!,
    comment: relation.comment,
    description: relation.comment !== null && !isSeedMarker(relation.comment) ? relation.comment : null,
    columns,
    primaryKey: constraints.find((c) => c.type === 'primary key')?.columns ?? [],
    constraints,
    indexes: indexRows.rows.map((row) => ({
      name: row.name,
      definition: row.definition,
      method: row.method,
      unique: row.unique,
      leadingColumn: row.leading_column,
      columns: row.columns,
      backsConstraint: row.backs_constraint,
    })),
  };
}

async function databaseName(db: Queryable): Promise<string> {
  const { rows } = await db.query<{ name: string }>('SELECT current_database() AS name');
  return rows[0]!.name;
}
