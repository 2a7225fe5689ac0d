/** Quote an SQL identifier (schema, table) that came from configuration. */
export function quoteIdent(identifier: string): string {
  return `"${identifier.replace(/"/g, '""')}"`;
}
