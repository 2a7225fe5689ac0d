/**
 * The typed tree a PostgREST request parses into (lib/postgrest/parseQuery.ts). Nothing here is
 * SQL: names are as the client wrote them, checked against the table by checkQuery.ts and turned
 * into a statement by compileRead.ts / compileWrite.ts.
 */

/** One step of a JSON path: `->key` (json) or `->>key` (text); a key of digits is an array index. */
export interface JsonStep {
  arrow: '->' | '->>';
  key: string;
}

/** A column, maybe followed by a JSON path: `meta->a->>b`. */
export interface FieldRef {
  column: string;
  path: readonly JsonStep[];
}

export interface SelectColumn {
  kind: 'column';
  field: FieldRef;
  alias?: string;
  /** A type name from the allow-list (lib/postgrest/castTypes.ts), already checked. */
  cast?: string;
}

export type SelectItem = { kind: 'star' } | SelectColumn;

export const COMPARISONS = ['eq', 'neq', 'gt', 'gte', 'lt', 'lte', 'like', 'ilike', 'match', 'imatch', 'isdistinct'] as const;
export const CONTAINMENT = ['cs', 'cd', 'ov'] as const;
export const TEXT_SEARCH = ['fts', 'plfts', 'phfts', 'wfts'] as const;
/** Operators that take `(any)` / `(all)` and a `{a,b}` list. */
export const QUANTIFIABLE = ['eq', 'gt', 'gte', 'lt', 'lte', 'like', 'ilike', 'match', 'imatch'] as const;

export type Comparison = (typeof COMPARISONS)[number];
type Containment = (typeof CONTAINMENT)[number];
type TextSearch = (typeof TEXT_SEARCH)[number];

export type Predicate =
  | { op: Comparison; value: string; quantifier?: 'any' | 'all'; values?: readonly string[] }
  | { op: 'in'; values: readonly string[] }
  | { op: 'is'; value: 'null' | 'not_null' | 'true' | 'false' | 'unknown' }
  | { op: Containment; value: string }
  | { op: TextSearch; value: string; language?: string };

export interface Condition {
  kind: 'condition';
  field: FieldRef;
  negated: boolean;
  predicate: Predicate;
  /** The query parameter it came from, for error messages. */
  parameter: string;
}

export interface Logic {
  kind: 'logic';
  op: 'and' | 'or';
  negated: boolean;
  children: readonly Filter[];
  parameter: string;
}

export type Filter = Condition | Logic;

export interface OrderTerm {
  field: FieldRef;
  direction?: 'asc' | 'desc';
  nulls?: 'first' | 'last';
}

type CountPreference = 'exact' | 'planned' | 'estimated';
type ReturnPreference = 'minimal' | 'headers-only' | 'representation';

export interface Preferences {
  count?: CountPreference;
  return?: ReturnPreference;
  resolution?: 'merge-duplicates' | 'ignore-duplicates';
  missing?: 'default' | 'null';
  handling?: 'strict' | 'lenient';
  maxAffected?: number;
  /** The preferences understood, as `Preference-Applied` echoes them. */
  applied: readonly string[];
}

/** A range of rows: from `offset`, at most `limit` (undefined = to the end). */
export interface RowRange {
  offset: number;
  limit?: number;
}

/** How the client wants the answer. */
export type ResponseShape = 'array' | 'object' | 'csv';

export interface ParsedQuery {
  select: readonly SelectItem[];
  /** Top-level filters, ANDed. */
  filters: readonly Filter[];
  order: readonly OrderTerm[];
  range: RowRange;
  /** `columns=` of an insert. */
  columns?: readonly string[];
  /** `on_conflict=` of an upsert. */
  onConflict?: readonly string[];
  preferences: Preferences;
  shape: ResponseShape;
  /** True when the Range header asked for the range (Content-Range then answers it). */
  rangeRequested: boolean;
}
