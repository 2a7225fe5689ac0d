/**
 * Filters of a generated list/count: query parameters such as `price.gte=10`, each mapped to one
 * column, one comparison and the SQL that reads its value. Declared in the OpenAPI document (ajv
 * has checked every value's type before a handler sees it); only declared names are looked at,
 * and values always travel as parameters.
 */
export interface ColumnFilter {
  /** The column as SQL, quoted: `t."unit price"`. */
  column: string;
  operator: '=' | '>' | '>=' | '<' | '<=';
  /** SQL reading parameter `$n` as the column's type, e.g. `$3::numeric`. */
  value: (param: number) => string;
}

export interface FilterSql {
  /** Conditions to AND together, in the filters' declared order (so equal inputs give equal SQL text). */
  conditions: string[];
  values: unknown[];
  /** The filters used, in order. */
  used: string[];
  /** Which filters were used, as a short token: the statement text depends on nothing else, so it names a prepared statement. */
  key: string;
}

export function filterSql(query: Readonly<Record<string, unknown>>, filters: Readonly<Record<string, ColumnFilter>>, firstParam: number): FilterSql {
  const conditions: string[] = [];
  const values: unknown[] = [];
  const used: string[] = [];
  let mask = 0n;
  let bit = 1n;
  for (const [name, filter] of Object.entries(filters)) {
    const value = query[name];
    bit <<= 1n;
    if (value === undefined) continue;
    mask |= bit;
    values.push(value);
    used.push(name);
    conditions.push(`${filter.column} ${filter.operator} ${filter.value(firstParam + values.length - 1)}`);
  }
  return { conditions, values, used, key: mask.toString(36) };
}
