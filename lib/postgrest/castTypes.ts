/**
 * The type names `select=column::type` may name, each with the SQL it compiles to. A cast is a
 * fixed string from this table, never the client's text; anything else is refused by the parser.
 */
const CASTS: Readonly<Record<string, string>> = {
  text: 'text',
  varchar: 'varchar',
  char: 'char',
  int: 'integer',
  int2: 'smallint',
  smallint: 'smallint',
  int4: 'integer',
  integer: 'integer',
  int8: 'bigint',
  bigint: 'bigint',
  numeric: 'numeric',
  decimal: 'numeric',
  real: 'real',
  float4: 'real',
  float8: 'double precision',
  float: 'double precision',
  bool: 'boolean',
  boolean: 'boolean',
  date: 'date',
  time: 'time',
  timetz: 'timetz',
  timestamp: 'timestamp',
  timestamptz: 'timestamptz',
  interval: 'interval',
  uuid: 'uuid',
  json: 'json',
  jsonb: 'jsonb',
};

export const CAST_NAMES: readonly string[] = Object.keys(CASTS);

/** The SQL type for an allowed cast name, or undefined. */
export function castSql(name: string): string | undefined {
  return Object.hasOwn(CASTS, name.toLowerCase()) ? CASTS[name.toLowerCase()] : undefined;
}
