/**
 * The columns a generated POST or PATCH sets: only those present in the (validated) body, in the
 * table's column order, each value a parameter read as the column's type.
 */
export interface WritableColumn {
  /** The column as SQL, quoted: `"unit price"`. */
  column: string;
  /** SQL reading parameter `$n` as the column's type, e.g. `$3::numeric`. */
  value: (param: number) => string;
  /** json/jsonb: the value travels as JSON text (node-postgres would send a JS array as a Postgres array). */
  json?: boolean;
}

export interface ColumnValues {
  columns: string[];
  /** One SQL value per column, parameters from `firstParam` on. */
  placeholders: string[];
  values: unknown[];
}

export function columnValues(body: Readonly<Record<string, unknown>>, columns: Readonly<Record<string, WritableColumn>>, firstParam: number): ColumnValues {
  const result: ColumnValues = { columns: [], placeholders: [], values: [] };
  for (const [name, spec] of Object.entries(columns)) {
    if (!Object.hasOwn(body, name)) continue;
    const value = body[name];
    result.columns.push(spec.column);
    result.placeholders.push(spec.value(firstParam + result.values.length));
    result.values.push(spec.json && value !== null ? JSON.stringify(value) : value);
  }
  return result;
}
