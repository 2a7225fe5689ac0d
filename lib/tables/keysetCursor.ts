import { BadRequest } from '../errors.ts';

/** The order a generated list walks: its key columns, their wire values as JSON, and how a cursor's values are read. */
export interface KeysetKey {
  /** The key columns as SQL, `t."id"`, in order. */
  columns: readonly string[];
  /** SQL giving the row's key as a JSON array, from the wire row `r`. */
  json: string;
  /** SQL reading parameter `$n` as each key column's type. */
  values: ReadonlyArray<(param: number) => string>;
}

/** Rows after the cursor's key: one row comparison, which a btree index on the key answers. */
export function keysetCondition(key: KeysetKey, firstParam: number): string {
  return `(${key.columns.join(', ')}) > (${key.values.map((value, i) => value(firstParam + i)).join(', ')})`;
}

/** One key column's value as it travels in a cursor: the row's own JSON value for that column. */
export type KeyValue = string | number | boolean;

/**
 * An opaque cursor: the last row's key as a JSON array (built by Postgres, `json_build_array`),
 * base64url-encoded so it is one URL-safe token whatever the key's types (text, uuid, composite).
 */
export function encodeCursor(keyJson: string): string {
  return Buffer.from(keyJson, 'utf8').toString('base64url');
}

/**
 * The key values inside a cursor, checked for shape. A cursor the client made up may still hold
 * values Postgres cannot read for the key's type: the query then fails with a data exception,
 * which the caller maps to 400 naming `cursor`.
 */
export function decodeCursor(cursor: string, keyLength: number): KeyValue[] {
  const invalid = () => new BadRequest('cursor is not a next_cursor returned by this list', 'cursor');
  if (!/^[A-Za-z0-9_-]+$/.test(cursor)) throw invalid();
  let values: unknown;
  try {
    values = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw invalid();
  }
  if (!Array.isArray(values) || values.length !== keyLength) throw invalid();
  if (!values.every((v) => typeof v === 'string' || typeof v === 'boolean' || (typeof v === 'number' && Number.isFinite(v)))) throw invalid();
  return values as KeyValue[];
}
