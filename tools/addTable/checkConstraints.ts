import type { CatalogTable, PgType } from './catalog.ts';

/**
 * What a table's CHECK constraints (and its columns' domain checks) allow, read from their text
 * as `pg_get_constraintdef` prints it, so the generated test makes rows the table accepts. The
 * common shapes are understood: bounds (`BETWEEN`, `>=`, `<`, …, a constant on either side),
 * `IN` lists (`= ANY (ARRAY[…])`), `NOT IN`, `<>`, `length(col)` / `char_length(col)` bounds, and
 * `col IS NULL OR …`. A check with anything else is reported as not understood, with its columns:
 * the generated test then samples candidates against the database instead.
 */
export interface ValueRules {
  min?: number | string;
  max?: number | string;
  exclusiveMin?: boolean;
  exclusiveMax?: boolean;
  /** The only values allowed (an IN list, `= const`), in the column's wire form. */
  values?: unknown[];
  /** Values refused (`<>`, NOT IN). */
  not?: unknown[];
  minLength?: number;
  maxLength?: number;
}

export interface CheckRules {
  /** Column → what its checks allow. */
  columns: Map<string, ValueRules>;
  /** Checks not (wholly) understood: the test tries candidates for their columns against the database. */
  unread: Array<{ name: string; columns: string[]; definition: string }>;
}

type Node =
  | { kind: 'and' | 'or'; items: Node[] }
  | { kind: 'not'; item: Node }
  | { kind: 'compare'; op: string; left: Node; right: Node }
  | { kind: 'any'; op: string; all: boolean; left: Node; right: Node }
  | { kind: 'is null'; negated: boolean; item: Node }
  | { kind: 'column'; name: string }
  | { kind: 'constant'; value: string | number | boolean | null }
  | { kind: 'call'; name: string; args: Node[] }
  | { kind: 'array'; items: Node[] };

const COMPARISONS = new Set(['=', '<>', '!=', '<', '<=', '>', '>=']);
const KEYWORDS = new Set(['AND', 'OR', 'NOT', 'IS', 'NULL', 'ANY', 'ALL', 'ARRAY', 'TRUE', 'FALSE']);

/** Tokens of a deparsed expression; anything unexpected throws (the check is then not understood). */
function tokenize(text: string): string[] {
  const tokens: string[] = [];
  const pattern = /\s*(?:('(?:[^']|'')*')|("(?:[^"]|"")+")|(\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)|([A-Za-z_][A-Za-z0-9_$]*)|(::|<>|!=|<=|>=|[()[\],=<>]))/y;
  let at = 0;
  while (at < text.length) {
    if (/^\s*$/.test(text.slice(at))) break;
    pattern.lastIndex = at;
    const match = pattern.exec(text);
    if (!match) throw new Error(`unexpected ${text.slice(at, at + 10)}`);
    tokens.push(match.slice(1).find((t) => t !== undefined)!);
    at = pattern.lastIndex;
  }
  return tokens;
}

function parse(text: string): Node {
  const tokens = tokenize(text);
  let at = 0;
  const peek = (offset = 0) => tokens[at + offset];
  const upper = (offset = 0) => peek(offset)?.toUpperCase();
  const expect = (token: string) => {
    if (tokens[at] !== token) throw new Error(`expected ${token}`);
    at++;
  };

  const or = (): Node => {
    const items = [and()];
    while (upper() === 'OR') {
      at++;
      items.push(and());
    }
    return items.length === 1 ? items[0]! : { kind: 'or', items };
  };
  const and = (): Node => {
    const items = [unary()];
    while (upper() === 'AND') {
      at++;
      items.push(unary());
    }
    return items.length === 1 ? items[0]! : { kind: 'and', items };
  };
  const unary = (): Node => {
    if (upper() === 'NOT') {
      at++;
      return { kind: 'not', item: unary() };
    }
    const left = operand();
    if (upper() === 'IS') {
      at++;
      const negated = upper() === 'NOT';
      if (negated) at++;
      if (upper() !== 'NULL') throw new Error('IS without NULL');
      at++;
      return { kind: 'is null', negated, item: left };
    }
    const op = peek();
    if (op === undefined || !COMPARISONS.has(op)) return left;
    at++;
    if (upper() === 'ANY' || upper() === 'ALL') {
      const all = upper() === 'ALL';
      at++;
      expect('(');
      const right = operand();
      expect(')');
      return { kind: 'any', op, all, left, right };
    }
    return { kind: 'compare', op, left, right: operand() };
  };
  /** A value with any `::type` casts after it (dropped: constants keep their text, columns their name). */
  const operand = (): Node => {
    const node = primary();
    while (peek() === '::') {
      at++;
      // Type names: several words (`timestamp without time zone`), a modifier, array brackets.
      while (/^[A-Za-z_]/.test(peek() ?? '') && !KEYWORDS.has(upper()!)) at++;
      if (peek() === '(' && /^\d/.test(peek(1) ?? '')) {
        while (peek() !== ')' && peek() !== undefined) at++;
        at++;
      }
      while (peek() === '[' && peek(1) === ']') at += 2;
    }
    return node;
  };
  const primary = (): Node => {
    const token = peek();
    if (token === undefined) throw new Error('unexpected end');
    at++;
    if (token === '(') {
      const inner = or();
      expect(')');
      return inner;
    }
    if (token.startsWith("'")) return { kind: 'constant', value: token.slice(1, -1).replace(/''/g, "'") };
    if (/^\d/.test(token)) return { kind: 'constant', value: Number(token) };
    if (token.startsWith('"')) return { kind: 'column', name: token.slice(1, -1).replace(/""/g, '"') };
    const word = token.toUpperCase();
    if (word === 'TRUE' || word === 'FALSE') return { kind: 'constant', value: word === 'TRUE' };
    if (word === 'NULL') return { kind: 'constant', value: null };
    if (word === 'ARRAY') {
      expect('[');
      const items: Node[] = [];
      while (peek() !== ']') {
        items.push(operand());
        if (peek() === ',') at++;
        else if (peek() !== ']') throw new Error('expected , or ]');
      }
      at++;
      return { kind: 'array', items };
    }
    if (KEYWORDS.has(word)) throw new Error(`unexpected ${token}`);
    if (peek() === '(') {
      at++;
      const args: Node[] = [];
      while (peek() !== ')') {
        args.push(or());
        if (peek() === ',') at++;
        else if (peek() !== ')') throw new Error('expected , or )');
      }
      at++;
      return { kind: 'call', name: token.toLowerCase(), args };
    }
    return { kind: 'column', name: token };
  };

  const node = or();
  if (at !== tokens.length) throw new Error(`unexpected ${peek()}`);
  return node;
}

const FLIPPED: Record<string, string> = { '<': '>', '<=': '>=', '>': '<', '>=': '<=', '=': '=', '<>': '<>', '!=': '!=' };
const NUMERIC = new Set(['int2', 'int4', 'int8', 'numeric', 'float4', 'float8']);
const INSTANTS = new Set(['date', 'timestamp', 'timestamptz']);
const TEXTUAL = new Set(['text', 'varchar', 'bpchar', 'enum']);

/** A constant in the column's wire form; undefined when this kind of column is not handled. */
function wireConstant(kind: string, value: string | number | boolean | null): unknown {
  if (value === null) return undefined;
  if (kind === 'numeric') return String(value);
  if (NUMERIC.has(kind)) return Number.isFinite(Number(value)) ? Number(value) : undefined;
  if (kind === 'bool') return typeof value === 'boolean' ? value : ['t', 'true'].includes(String(value).toLowerCase());
  if (INSTANTS.has(kind)) return String(value).replace(' ', 'T');
  if (TEXTUAL.has(kind) || kind === 'uuid') return String(value);
  return undefined;
}

/**
 * Reads one condition on one column into `rules`. False when it is not a shape understood here.
 * `column` is the column's name as the expression spells it (`VALUE` in a domain's check).
 */
function readCondition(node: Node, column: (name: string) => string | undefined, kindOf: (name: string) => string, rules: Map<string, ValueRules>): boolean {
  const add = (name: string, rule: ValueRules) => rules.set(name, merge(rules.get(name), rule));
  if (node.kind === 'and') return node.items.map((item) => readCondition(item, column, kindOf, rules)).every(Boolean);
  if (node.kind === 'is null') return node.negated && node.item.kind === 'column' && column(node.item.name) !== undefined;
  if (node.kind === 'or') {
    // `col IS NULL OR <condition on col>`: a value meeting the condition passes, and so does NULL.
    const nulls = node.items.filter((item) => item.kind === 'is null' && !item.negated);
    const rest = node.items.filter((item) => !nulls.includes(item));
    return nulls.length > 0 && rest.length === 1 && readCondition(rest[0]!, column, kindOf, rules);
  }
  if (node.kind === 'any') {
    if (node.left.kind !== 'column' || node.right.kind !== 'array') return false;
    const name = column(node.left.name);
    if (name === undefined || !node.right.items.every((item) => item.kind === 'constant')) return false;
    const values = node.right.items.map((item) => wireConstant(kindOf(name), (item as { value: string | number | boolean | null }).value));
    if (values.some((v) => v === undefined)) return false;
    if (!node.all && node.op === '=') add(name, { values });
    else if (node.all && (node.op === '<>' || node.op === '!=')) add(name, { not: values });
    else return false;
    return true;
  }
  if (node.kind !== 'compare') return false;
  let { left, right, op } = node;
  if (left.kind === 'constant') [left, right, op] = [right, left, FLIPPED[op]!];
  if (right.kind !== 'constant') return false;
  const length =
    left.kind === 'call' && ['length', 'char_length', 'character_length'].includes(left.name) && left.args.length === 1 ? left.args[0]! : undefined;
  const target = length ?? left;
  if (target.kind !== 'column') return false;
  const name = column(target.name);
  if (name === undefined) return false;
  if (length) {
    const n = Number(right.value);
    if (!Number.isInteger(n) || op === '<>' || op === '!=') return false;
    if (op === '>=' || op === '=') add(name, { minLength: n });
    if (op === '>') add(name, { minLength: n + 1 });
    if (op === '<=' || op === '=') add(name, { maxLength: n });
    if (op === '<') add(name, { maxLength: n - 1 });
    return true;
  }
  const kind = kindOf(name);
  const value = wireConstant(kind, right.value);
  if (value === undefined) return false;
  if (op === '=') add(name, { values: [value] });
  else if (op === '<>' || op === '!=') add(name, { not: [value] });
  else if (NUMERIC.has(kind) || INSTANTS.has(kind)) {
    const bound = NUMERIC.has(kind) ? Number(right.value) : (value as string);
    if (op === '>' || op === '>=') add(name, { min: bound, exclusiveMin: op === '>' || undefined });
    else add(name, { max: bound, exclusiveMax: op === '<' || undefined });
  } else return false;
  return true;
}

/** The domains a column's type goes through, outermost first (a domain over a domain has both checks). */
function domainsOf(type: PgType): PgType[] {
  const domains: PgType[] = [];
  for (let t: PgType | undefined = type; t?.kind === 'domain'; t = t.base) domains.push(t);
  return domains;
}

/** `kindOf(column)`: the generated test's fixture kind of each column (`int2`, `text`, `enum`, …). */
export function readChecks(table: CatalogTable, kindOf: (column: string) => string): CheckRules {
  const columns = new Map<string, ValueRules>();
  const unread: CheckRules['unread'] = [];
  const byName = new Map(table.columns.map((c) => [c.name, c]));
  const understand = (name: string, definition: string, covered: string[], spelled: (name: string) => string | undefined) => {
    const body = /^CHECK \((.*)\)( NOT VALID| NO INHERIT)*$/s.exec(definition)?.[1];
    const found = new Map<string, ValueRules>();
    let understood = false;
    try {
      understood = body !== undefined && readCondition(parse(body), spelled, kindOf, found);
    } catch {
      understood = false;
    }
    // Even a check only partly understood narrows its columns; the rest is left to sampling.
    for (const [column, rules] of found) columns.set(column, merge(columns.get(column), rules));
    if (!understood) unread.push({ name, columns: covered, definition });
  };
  for (const constraint of table.constraints.filter((c) => c.type === 'check')) {
    understand(constraint.name, constraint.definition, constraint.columns, (name) => (byName.has(name) ? name : undefined));
  }
  for (const column of table.columns) {
    // Checks of an array's element domain are left to sampling.
    for (const domain of domainsOf(column.type)) {
      (domain.domainChecks ?? []).forEach((definition, n) => {
        const name = domain.domainCheckNames?.[n] ?? `${domain.name}_check`;
        understand(name, definition, [column.name], (spelled) => (spelled.toUpperCase() === 'VALUE' ? column.name : undefined));
      });
    }
  }
  return { columns, unread };
}

/** Both sets of rules at once: the tighter bound, the values allowed by both. */
function merge(a: ValueRules | undefined, b: ValueRules): ValueRules {
  const merged: ValueRules = { ...a, ...b };
  if (!a) return drop(merged);
  if (a.values && b.values) merged.values = a.values.filter((v) => b.values!.some((w) => String(w) === String(v)));
  if (a.not || b.not) merged.not = [...(a.not ?? []), ...(b.not ?? [])];
  if (a.minLength !== undefined && b.minLength !== undefined) merged.minLength = Math.max(a.minLength, b.minLength);
  if (a.maxLength !== undefined && b.maxLength !== undefined) merged.maxLength = Math.min(a.maxLength, b.maxLength);
  const number = (x: number | string) => (typeof x === 'number' ? x : Date.parse(x));
  const tighter = (x: number | string | undefined, y: number | string | undefined, sign: 1 | -1) =>
    x === undefined ? y : y === undefined ? x : sign * (number(x) - number(y)) >= 0 ? x : y;
  merged.min = tighter(a.min, b.min, 1);
  merged.max = tighter(a.max, b.max, -1);
  merged.exclusiveMin = merged.min === b.min ? b.exclusiveMin : a.exclusiveMin;
  merged.exclusiveMax = merged.max === b.max ? b.exclusiveMax : a.exclusiveMax;
  return drop(merged);
}

function drop(rules: ValueRules): ValueRules {
  for (const key of Object.keys(rules) as Array<keyof ValueRules>) if (rules[key] === undefined) delete rules[key];
  return rules;
}

/** A column's fixture with its rules: the tighter of the type's and the check's length. */
export function withRules<T extends { maxLength?: number }>(fixture: T, rules: ValueRules | undefined): T & ValueRules {
  if (!rules) return fixture;
  const maxLength = Math.min(fixture.maxLength ?? Infinity, rules.maxLength ?? Infinity);
  return { ...fixture, ...rules, ...(Number.isFinite(maxLength) ? { maxLength } : {}) };
}
