/**
 * A statement that always returns a row (an aggregate such as count(*), a json_agg page) and
 * returned none: a bug or a broken server, never the client's fault, so it maps to a 500.
 */
class MissingRow extends Error {
  constructor(what: string) {
    super(`${what} returned no row`);
    this.name = 'MissingRow';
  }
}

/** The first row of a statement that always returns one; `what` names it for the error. */
export function firstRow<R>(result: { rows: readonly R[] }, what: string): R {
  const row = result.rows[0];
  if (row === undefined) throw new MissingRow(what);
  return row;
}
