/**
 * What the PostgREST dialect knows of a generated table: its columns as the catalog described them
 * (written into the table file by `npm run add-table`), its key, and what its owner allows (in a
 * file of the owner's, functions/<singular>Dialect.ts). Every identifier that reaches SQL comes from
 * here, quoted; the request only chooses among them.
 */

/** How a column's values compare, which decides the operators it takes. */
export type ColumnKind = 'text' | 'number' | 'boolean' | 'temporal' | 'uuid' | 'json' | 'tsvector' | 'array' | 'range' | 'other';

export interface TableColumn {
  name: string;
  /** The column's type as SQL a parameter can be cast to: `int8`, `numeric`, `text[]`, `"public"."mood"`. */
  sql: string;
  kind: ColumnKind;
  /** SQL of the JSON wire value, `{}` standing for the column (`{}::text` for numeric); default `{}`. */
  output?: string;
  /** SQL reading a parameter as the column's type, `{}` standing for the parameter; default `{}::<sql>`. */
  input?: string;
  /** json/jsonb: a written value travels as JSON text. */
  json?: boolean;
  /** The column's default as the catalog prints it (`nextval(…)`), for `Prefer: missing=default`. */
  default?: string;
  /** Filled by the database (identity ALWAYS, generated): never written. */
  readOnly?: boolean;
}

/**
 * What the table's owner allows clients to ask (functions/<singular>Dialect.ts, a file `--refresh`
 * never rewrites): typed by the table's column names, so a name the table lost fails the typecheck.
 */
export interface TableNarrowing<Column extends string = string> {
  /** Columns a filter may name (and and/or inside): every column unless the owner narrows it. */
  filterable?: readonly Column[];
  /** Columns order= may name: every column unless narrowed. */
  orderable?: readonly Column[];
  /** Most rows one response carries (PostgREST's db-max-rows); Content-Range shows the cut. */
  maxRows?: number;
}

export interface PostgrestTable extends TableNarrowing {
  /** The path it is served under, without the slash: `rides`. Named in messages. */
  name: string;
  /** Schema-qualified and quoted: `"public"."nyc_train_synced"`. */
  relation: string;
  columns: readonly TableColumn[];
  /** Primary key column names, in order. */
  primaryKey: readonly string[];
}

/** The column named `name`, if the table has one. */
export function columnOf(table: PostgrestTable, name: string): TableColumn | undefined {
  return table.columns.find((column) => column.name === name);
}
