import { castSql, CAST_NAMES } from './castTypes.ts';
import { PostgrestError, queryParseError, short } from './postgrestError.ts';
import {
  COMPARISONS,
  CONTAINMENT,
  type Comparison,
  type Condition,
  type FieldRef,
  type Filter,
  type JsonStep,
  type Logic,
  type OrderTerm,
  type ParsedQuery,
  type Predicate,
  type Preferences,
  QUANTIFIABLE,
  type ResponseShape,
  type RowRange,
  type SelectItem,
  TEXT_SEARCH,
} from './syntaxTree.ts';

/**
 * PostgREST's request grammar (query string, `Prefer`, `Range`, `Accept`) parsed into the typed tree
 * of syntaxTree.ts. Refusals are PostgrestErrors naming the parameter; nothing here knows the table.
 * The bounds keep a hostile request from costing more than a normal one: they are checked before
 * (and while) parsing, so no SQL ever runs for a request past them.
 */
export interface QueryBounds {
  /** Bytes of the raw query string. */
  maxQueryBytes: number;
  /** Conditions over the whole request, nested ones included. */
  maxConditions: number;
  /** Depth of nested and=(…) / or=(…). */
  maxDepth: number;
  /** Items of select=, columns=, order= and of one in.(…) list. */
  maxItems: number;
}

export const DEFAULT_BOUNDS: QueryBounds = { maxQueryBytes: 8192, maxConditions: 100, maxDepth: 8, maxItems: 200 };

/** Query parameters with a meaning of their own; every other name is a column filter. */
const RESERVED = new Set(['select', 'order', 'limit', 'offset', 'columns', 'on_conflict']);
const LOGIC_KEY = /^(not\.)?(and|or)$/;

export type HeaderMap = Readonly<Record<string, string | string[] | undefined>>;

function header(headers: HeaderMap, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value.join(', ') : value;
}

/**
 * Splits `text` at `separator` where it is outside double quotes, parentheses and braces.
 * Unbalanced brackets or quotes are refused.
 */
function splitTopLevel(text: string, separator: string, parameter: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let quoted = false;
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '\\') i++;
      else if (c === '"') quoted = false;
      continue;
    }
    if (c === '"') quoted = true;
    else if (c === '(' || c === '{') depth++;
    else if (c === ')' || c === '}') {
      depth--;
      if (depth < 0) throw queryParseError(parameter, 'unbalanced parentheses', `unexpected "${c}" at position ${i}`);
    } else if (c === separator && depth === 0) {
      parts.push(text.slice(start, i));
      start = i + 1;
    }
  }
  if (quoted) throw queryParseError(parameter, 'unterminated double quote');
  if (depth !== 0) throw queryParseError(parameter, 'unbalanced parentheses');
  parts.push(text.slice(start));
  return parts;
}

/** `"a \"b\""` → `a "b"`; text without surrounding quotes is returned as is. */
function unquote(text: string): string {
  if (text.length >= 2 && text.startsWith('"') && text.endsWith('"')) return text.slice(1, -1).replace(/\\(.)/g, '$1');
  return text;
}

/** The items of `(a,"b,c")` or `{a,b}`: commas split, double quotes group. */
function parseList(text: string, open: string, close: string, parameter: string, bounds: QueryBounds): string[] {
  if (!text.startsWith(open) || !text.endsWith(close)) throw queryParseError(parameter, `expected a list in ${open}…${close}`, `got "${short(text)}"`);
  const inner = text.slice(1, -1);
  if (inner === '') return [];
  const items = splitTopLevel(inner, ',', parameter).map(unquote);
  if (items.length > bounds.maxItems) throw queryParseError(parameter, `a list holds at most ${bounds.maxItems} items`);
  return items;
}

/** `col`, `"my col"`, `meta->a->>b`, `meta->0`. */
function parseField(text: string, parameter: string): FieldRef {
  let column: string;
  let rest: string;
  if (text.startsWith('"')) {
    const end = text.indexOf('"', 1);
    if (end === -1) throw queryParseError(parameter, 'unterminated double quote in a column name');
    column = text.slice(1, end);
    rest = text.slice(end + 1);
  } else {
    const arrow = text.indexOf('->');
    column = arrow === -1 ? text : text.slice(0, arrow);
    rest = arrow === -1 ? '' : text.slice(arrow);
  }
  if (column === '') throw queryParseError(parameter, 'a column name is missing');
  const path: JsonStep[] = [];
  while (rest !== '') {
    const arrow = rest.startsWith('->>') ? '->>' : rest.startsWith('->') ? '->' : undefined;
    if (!arrow) throw queryParseError(parameter, `unexpected "${short(rest)}" after a column name`);
    rest = rest.slice(arrow.length);
    let key: string;
    if (rest.startsWith('"')) {
      const end = rest.indexOf('"', 1);
      if (end === -1) throw queryParseError(parameter, 'unterminated double quote in a JSON key');
      key = rest.slice(1, end);
      rest = rest.slice(end + 1);
    } else {
      const next = rest.indexOf('->');
      key = next === -1 ? rest : rest.slice(0, next);
      rest = next === -1 ? '' : rest.slice(next);
    }
    if (key === '') throw queryParseError(parameter, 'a JSON path has an empty key');
    path.push({ arrow, key });
  }
  // Only the last step may turn the value into text.
  if (path.slice(0, -1).some((step) => step.arrow === '->>')) throw queryParseError(parameter, '->> may only end a JSON path');
  return { column, path };
}

/** The first `.` outside double quotes: where a field ends in `field.op.value`. */
function fieldEnd(text: string): number {
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    if (text[i] === '"') quoted = !quoted;
    else if (text[i] === '.' && !quoted) return i;
  }
  return -1;
}

const OPERATORS = new Set<string>([...COMPARISONS, ...CONTAINMENT, ...TEXT_SEARCH, 'in', 'is']);
const IS_VALUES = new Set(['null', 'not_null', 'true', 'false', 'unknown']);

/** `[not.]op[(modifier)].value` → the predicate, and whether it is negated. */
function parseOperation(text: string, parameter: string, bounds: QueryBounds, inLogic = false): { negated: boolean; predicate: Predicate } {
  let rest = text;
  const negated = rest.startsWith('not.');
  if (negated) rest = rest.slice(4);
  const match = /^([a-z]+)(?:\(([^)]*)\))?\./.exec(rest);
  if (!match) {
    const op = /^[a-z]+/.exec(rest)?.[0];
    if (op && OPERATORS.has(op)) throw queryParseError(parameter, `the operator ${op} needs a value`, `expected "${op}.<value>"`);
    throw queryParseError(parameter, 'expected an operator and a value', `"${short(text)}" is not "[not.]<operator>.<value>"`, 'e.g. id=eq.1');
  }
  const op = match[1] as string;
  const modifier = match[2];
  let value = rest.slice(match[0].length);
  if (!OPERATORS.has(op)) {
    throw queryParseError(parameter, `unknown operator "${short(op)}"`, undefined, `operators: ${[...OPERATORS].join(', ')}`);
  }
  // Inside and=(…)/or=(…) a value may be double-quoted to hold commas or parentheses.
  if (inLogic && op !== 'in') value = unquote(value);

  if (op === 'in') {
    if (modifier !== undefined) throw queryParseError(parameter, 'in takes no modifier');
    return { negated, predicate: { op: 'in', values: parseList(value, '(', ')', parameter, bounds) } };
  }
  if (op === 'is') {
    const lower = value.toLowerCase();
    if (modifier !== undefined || !IS_VALUES.has(lower)) {
      throw queryParseError(parameter, `is takes null, not_null, true, false or unknown`, `got "${short(value)}"`);
    }
    return { negated, predicate: { op: 'is', value: lower as 'null' } };
  }
  if ((TEXT_SEARCH as readonly string[]).includes(op)) {
    if (modifier !== undefined && !/^[A-Za-z_][A-Za-z0-9_]*$/.test(modifier))
      throw queryParseError(parameter, `"${short(modifier)}" is not a text search configuration name`);
    return { negated, predicate: { op: op as (typeof TEXT_SEARCH)[number], value, ...(modifier !== undefined ? { language: modifier } : {}) } };
  }
  if ((CONTAINMENT as readonly string[]).includes(op)) {
    if (modifier !== undefined) throw queryParseError(parameter, `${op} takes no modifier`);
    return { negated, predicate: { op: op as (typeof CONTAINMENT)[number], value } };
  }
  if (modifier !== undefined) {
    if (!(QUANTIFIABLE as readonly string[]).includes(op) || (modifier !== 'any' && modifier !== 'all')) {
      throw queryParseError(
        parameter,
        `${op}(${short(modifier)}) is not an operator`,
        undefined,
        'any and all apply to eq, gt, gte, lt, lte, like, ilike, match and imatch',
      );
    }
    const values = parseList(value, '{', '}', parameter, bounds);
    if (values.length === 0) throw queryParseError(parameter, `${op}(${modifier}) needs at least one value`);
    return { negated, predicate: { op: op as Comparison, value, quantifier: modifier, values } };
  }
  return { negated, predicate: { op: op as Comparison, value } };
}

/** Counts conditions and depth while parsing, to refuse a request past its bounds. */
class Budget {
  conditions = 0;
  constructor(readonly bounds: QueryBounds) {}
  condition(parameter: string): void {
    if (++this.conditions > this.bounds.maxConditions)
      throw queryParseError(parameter, `a request holds at most ${this.bounds.maxConditions} filter conditions`);
  }
}

function parseCondition(key: string, value: string, parameter: string, budget: Budget, inLogic: boolean): Condition {
  budget.condition(parameter);
  const field = parseField(key, parameter);
  const { negated, predicate } = parseOperation(value, parameter, budget.bounds, inLogic);
  return { kind: 'condition', field, negated, predicate, parameter };
}

/** The body of `or=(…)` / `and(…)`: conditions and nested groups, comma-separated. */
function parseLogic(op: 'and' | 'or', negated: boolean, text: string, parameter: string, budget: Budget, depth: number): Logic {
  if (depth > budget.bounds.maxDepth) throw queryParseError(parameter, `and/or nest at most ${budget.bounds.maxDepth} deep`);
  if (!text.startsWith('(') || !text.endsWith(')'))
    throw queryParseError(parameter, `${op} expects a parenthesised list`, `got "${short(text)}"`, `e.g. ${op}=(a.eq.1,b.gt.2)`);
  const inner = text.slice(1, -1);
  if (inner === '') throw queryParseError(parameter, `${op}=() has no conditions`);
  const children: Filter[] = [];
  for (const item of splitTopLevel(inner, ',', parameter)) {
    const nested = /^(not\.)?(and|or)\(/.exec(item);
    if (nested) {
      children.push(parseLogic(nested[2] as 'and' | 'or', nested[1] !== undefined, item.slice(nested[0].length - 1), parameter, budget, depth + 1));
      continue;
    }
    const end = fieldEnd(item);
    if (end <= 0) throw queryParseError(parameter, `"${short(item)}" is not "<column>.<operator>.<value>"`);
    children.push(parseCondition(item.slice(0, end), item.slice(end + 1), parameter, budget, true));
  }
  return { kind: 'logic', op, negated, children, parameter };
}

/** `a, alias:b, c::text, meta->>k` → select items; embedding, spreads and aggregates are refused. */
function parseSelect(text: string, bounds: QueryBounds): SelectItem[] {
  const parameter = 'select';
  if (text.trim() === '') return [{ kind: 'star' }];
  const items = splitTopLevel(text, ',', parameter);
  if (items.length > bounds.maxItems) throw queryParseError(parameter, `select= lists at most ${bounds.maxItems} items`);
  return items.map((raw): SelectItem => {
    const item = raw.trim();
    if (item === '*') return { kind: 'star' };
    if (item === '') throw queryParseError(parameter, 'an empty item in select=');
    if (item.includes('(') || item.startsWith('...')) {
      throw new PostgrestError(
        400,
        {
          code: 'PGRST100',
          message: `"select": "${short(item)}" embeds a resource or calls an aggregate, which this API does not support`,
          hint: 'select columns of this table only',
        },
        { field: parameter },
      );
    }
    let rest = item;
    let alias: string | undefined;
    const aliasMatch = /^("[^"]+"|[^:"]+):(?!:)/.exec(rest);
    if (aliasMatch) {
      alias = unquote(aliasMatch[1] as string);
      rest = rest.slice(aliasMatch[0].length);
    }
    let cast: string | undefined;
    const castAt = rest.lastIndexOf('::');
    if (castAt !== -1 && !rest.slice(castAt).includes('"')) {
      const name = rest.slice(castAt + 2);
      cast = castSql(name);
      if (!cast) throw queryParseError(parameter, `"${short(name)}" is not a type this API casts to`, undefined, `types: ${CAST_NAMES.join(', ')}`);
      rest = rest.slice(0, castAt);
    }
    return { kind: 'column', field: parseField(rest, parameter), ...(alias !== undefined ? { alias } : {}), ...(cast !== undefined ? { cast } : {}) };
  });
}

/** `a.desc.nullslast,b,meta->>k.asc` → order terms. */
function parseOrder(text: string, bounds: QueryBounds): OrderTerm[] {
  const parameter = 'order';
  const items = splitTopLevel(text, ',', parameter);
  if (items.length > bounds.maxItems) throw queryParseError(parameter, `order= lists at most ${bounds.maxItems} keys`);
  return items.map((item): OrderTerm => {
    const end = fieldEnd(item);
    const field = parseField(end === -1 ? item : item.slice(0, end), parameter);
    const term: OrderTerm = { field };
    for (const modifier of end === -1 ? [] : item.slice(end + 1).split('.')) {
      if ((modifier === 'asc' || modifier === 'desc') && term.direction === undefined) term.direction = modifier;
      else if ((modifier === 'nullsfirst' || modifier === 'nullslast') && term.nulls === undefined) term.nulls = modifier === 'nullsfirst' ? 'first' : 'last';
      else throw queryParseError(parameter, `"${short(modifier)}" is not asc, desc, nullsfirst or nullslast`);
    }
    return term;
  });
}

/** `"a","b"` or `a,b` → names (columns=, on_conflict=). */
function parseNames(text: string, parameter: string, bounds: QueryBounds): string[] {
  const names = splitTopLevel(text, ',', parameter).map((name) => unquote(name.trim()));
  if (names.length > bounds.maxItems) throw queryParseError(parameter, `${parameter}= lists at most ${bounds.maxItems} columns`);
  if (names.some((name) => name === '')) throw queryParseError(parameter, 'an empty column name');
  return names;
}

function parseCount(text: string, parameter: string): number {
  if (!/^\d{1,15}$/.test(text)) throw queryParseError(parameter, `expected a non-negative integer, got "${short(text)}"`);
  return Number(text);
}

/**
 * The Prefer header (RFC 7240). PostgREST ignores what it does not understand unless the client
 * sent `handling=strict`, which turns every unknown or invalid preference into PGRST122.
 */
export function parsePreferences(value: string | undefined): Preferences {
  const applied: string[] = [];
  const invalid: string[] = [];
  const prefs: Omit<Preferences, 'applied'> = {};
  const tokens = (value ?? '')
    .split(/[,;]/)
    .map((token) => token.trim())
    .filter((token) => token !== '');
  for (const token of tokens) {
    const [name = '', setting = ''] = token.split('=', 2).map((part) => part.trim());
    let ok = true;
    if (name === 'count' && (setting === 'exact' || setting === 'planned' || setting === 'estimated')) prefs.count = setting;
    else if (name === 'return' && (setting === 'minimal' || setting === 'headers-only' || setting === 'representation')) prefs.return = setting;
    else if (name === 'resolution' && (setting === 'merge-duplicates' || setting === 'ignore-duplicates')) prefs.resolution = setting;
    else if (name === 'missing' && (setting === 'default' || setting === 'null')) prefs.missing = setting;
    else if (name === 'handling' && (setting === 'strict' || setting === 'lenient')) prefs.handling = setting;
    else if (name === 'max-affected' && /^\d{1,15}$/.test(setting)) prefs.maxAffected = Number(setting);
    else ok = false;
    if (ok) applied.push(`${name}=${setting}`);
    else invalid.push(token);
  }
  if (prefs.handling === 'strict' && invalid.length > 0) {
    throw new PostgrestError(
      400,
      { code: 'PGRST122', message: 'Invalid preferences given with handling=strict', details: `Invalid preferences: ${invalid.map(short).join(', ')}` },
      { field: 'prefer' },
    );
  }
  return { ...prefs, applied };
}

/**
 * `Range: 0-9` (or `items=0-9`, or an open `10-`): rows from..to. A header that does not parse is
 * ignored, as PostgREST does; a range that ends before it starts is 416.
 */
export function parseRangeHeader(value: string | undefined): RowRange | undefined {
  const match = /^\s*(?:items=)?(\d{1,15})-(\d{0,15})\s*$/.exec(value ?? '');
  if (!match) return undefined;
  const from = Number(match[1]);
  if (match[2] === '') return { offset: from };
  const to = Number(match[2]);
  if (to < from) {
    throw new PostgrestError(
      416,
      { code: 'PGRST103', message: 'Requested range not satisfiable', details: `the range ${from}-${to} ends before it starts` },
      { field: 'range' },
    );
  }
  return { offset: from, limit: to - from + 1 };
}

/** Rows both in `a` and in `b`: the query's limit/offset intersected with the Range header. */
function intersect(a: RowRange, b: RowRange | undefined): RowRange {
  if (!b) return a;
  const offset = Math.max(a.offset, b.offset);
  const ends = [a, b].filter((r) => r.limit !== undefined).map((r) => r.offset + (r.limit as number));
  if (ends.length === 0) return { offset };
  return { offset, limit: Math.max(Math.min(...ends) - offset, 0) };
}

/** The answer's media type from Accept: a JSON array, one object, or CSV; else 406 PGRST107. */
export function parseAccept(value: string | undefined): { shape: ResponseShape; stripNulls: boolean } {
  if (!value || value.trim() === '') return { shape: 'array', stripNulls: false };
  const offered = value.split(',').map((part) => {
    const [type = '', ...params] = part.split(';').map((p) => p.trim().toLowerCase());
    return { type, params };
  });
  for (const { type, params } of offered) {
    const stripNulls = params.includes('nulls=stripped');
    if (type === 'application/vnd.pgrst.object+json' || type === 'application/vnd.pgrst.object') return { shape: 'object', stripNulls };
    if (type === 'text/csv') return { shape: 'csv', stripNulls: false };
    if (['application/json', 'application/vnd.pgrst.array+json', 'application/vnd.pgrst.array', 'application/*', '*/*'].includes(type))
      return { shape: 'array', stripNulls };
  }
  throw new PostgrestError(406, { code: 'PGRST107', message: `None of these media types are available: ${short(value)}` }, { field: 'accept' });
}

export interface ParsedRequest extends ParsedQuery {
  /** `Accept: …;nulls=stripped`: members whose value is null are left out. */
  stripNulls: boolean;
}

/**
 * The whole request: `search` is the raw query string (without `?`), `headers` lower-cased.
 * Repeated filters on one column are all kept (ANDed), as PostgREST does.
 */
export function parseQuery(search: string, headers: HeaderMap, bounds: QueryBounds = DEFAULT_BOUNDS): ParsedRequest {
  if (Buffer.byteLength(search) > bounds.maxQueryBytes) {
    throw new PostgrestError(400, { code: 'PGRST100', message: `The query string exceeds ${bounds.maxQueryBytes} bytes` }, { field: 'query' });
  }
  const budget = new Budget(bounds);
  const filters: Filter[] = [];
  let select: SelectItem[] = [{ kind: 'star' }];
  let order: OrderTerm[] = [];
  let range: RowRange = { offset: 0 };
  let columns: string[] | undefined;
  let onConflict: string[] | undefined;
  const seen = new Set<string>();
  let params: URLSearchParams;
  try {
    params = new URLSearchParams(search);
  } catch {
    throw queryParseError('query', 'the query string does not decode');
  }
  for (const [key, value] of params) {
    if (RESERVED.has(key)) {
      if (seen.has(key)) throw queryParseError(key, `${key}= is given more than once`);
      seen.add(key);
    }
    switch (key) {
      case 'select':
        select = parseSelect(value, bounds);
        break;
      case 'order':
        order = parseOrder(value, bounds);
        break;
      case 'limit':
        range = { ...range, limit: parseCount(value, key) };
        break;
      case 'offset':
        range = { ...range, offset: parseCount(value, key) };
        break;
      case 'columns':
        columns = parseNames(value, key, bounds);
        break;
      case 'on_conflict':
        onConflict = parseNames(value, key, bounds);
        break;
      default: {
        if (key === '') throw queryParseError('query', 'a parameter has no name');
        const logic = LOGIC_KEY.exec(key);
        if (logic) filters.push(parseLogic(logic[2] as 'and' | 'or', logic[1] !== undefined, value, key, budget, 1));
        else filters.push(parseCondition(key, value, key, budget, false));
      }
    }
  }
  const rangeHeader = parseRangeHeader(header(headers, 'range'));
  const { shape, stripNulls } = parseAccept(header(headers, 'accept'));
  return {
    select,
    filters,
    order,
    range: intersect(range, rangeHeader),
    ...(columns ? { columns } : {}),
    ...(onConflict ? { onConflict } : {}),
    preferences: parsePreferences(header(headers, 'prefer')),
    shape,
    stripNulls,
    rangeRequested: rangeHeader !== undefined,
  };
}
