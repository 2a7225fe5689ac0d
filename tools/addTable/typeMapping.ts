import type { SchemaObject } from 'openapi3-ts/oas31';
import type { CatalogColumn, PgType } from './catalog.ts';

/**
 * How each Postgres type travels as JSON, both ways, and how it is described in the OpenAPI
 * document. Exact wherever JSON can be exact: numeric as a decimal string (a JSON number would
 * round through a double), bytea as base64, timestamps in ISO 8601 as the trips serve them.
 */

/** What the generated test needs to make valid values of a column. */
interface FixtureType {
  kind: string;
  maxLength?: number;
  precision?: number;
  scale?: number;
  labels?: string[];
  element?: FixtureType;
  /** Postgres' input type for the value (`$1::<sql>`). */
  sql: string;
}

export interface TypeMapping {
  /** The JSON schema of a non-null value. */
  schema: SchemaObject;
  /** SQL giving the wire value from the column (`{}` = the column), where row_to_json alone is not exact. */
  output: string;
  /** SQL reading one parameter as the column's type (`{}` = the parameter, e.g. `$3`). */
  input: string;
  /** How a JSON value becomes the statement parameter: as is, or as JSON text. */
  param: 'value' | 'json';
  /** A btree-ordered scalar: may be filtered with ranges and walked by a keyset cursor. */
  orderable: boolean;
  fixture: FixtureType;
  /** Set when the mapping is not exact: the warning printed to the user. */
  loose?: string;
  /** The type's own NOT NULL (a domain's). */
  notNull?: boolean;
}

const LOCAL_TIMESTAMP = '^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}(\\.\\d{1,6})?$';
const TIME = '^\\d{2}:\\d{2}:\\d{2}(\\.\\d{1,6})?$';
const TIME_WITH_ZONE = '^\\d{2}:\\d{2}:\\d{2}(\\.\\d{1,6})?[+-]\\d{2}(:\\d{2}){0,2}$';
const BASE64 = '^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$';

function numericPattern(precision?: number, scale?: number): string {
  if (precision === undefined || scale === undefined) return '^-?\\d{1,131072}(\\.\\d{1,16383})?$';
  const whole = Math.max(precision - scale, 1);
  return scale > 0 ? `^-?\\d{1,${whole}}(\\.\\d{1,${scale}})?$` : `^-?\\d{1,${whole}}$`;
}

function base(type: PgType, cast: string): TypeMapping | undefined {
  const plain = (schema: SchemaObject, kind: string, extra: Partial<FixtureType> = {}): TypeMapping => ({
    schema,
    output: '{}',
    input: `{}::${cast}`,
    param: 'value',
    orderable: true,
    fixture: { kind, sql: cast, ...extra },
  });
  switch (type.name) {
    case 'int2':
      return plain({ type: 'integer', minimum: -32768, maximum: 32767 }, 'int2');
    case 'int4':
      return plain({ type: 'integer', minimum: -2147483648, maximum: 2147483647 }, 'int4');
    case 'int8':
      return plain(
        {
          type: 'integer',
          minimum: -Number.MAX_SAFE_INTEGER,
          maximum: Number.MAX_SAFE_INTEGER,
          description: '64-bit integer; accepted within ±(2^53 − 1), the integers every JSON client reads exactly',
        },
        'int8',
      );
    case 'numeric': {
      const digits = type.precision === undefined ? 'any precision' : `precision ${type.precision}, scale ${type.scale}`;
      return {
        ...plain(
          { type: 'string', pattern: numericPattern(type.precision, type.scale), description: `Exact decimal as a string (numeric, ${digits})` },
          'numeric',
          { precision: type.precision, scale: type.scale },
        ),
        output: '{}::text',
      };
    }
    case 'float4':
      return plain({ type: 'number', description: 'Single-precision float' }, 'float4');
    case 'float8':
      return plain({ type: 'number' }, 'float8');
    case 'bool':
      return plain({ type: 'boolean' }, 'bool');
    case 'text':
      return plain({ type: 'string' }, 'text');
    case 'varchar':
      return plain({ type: 'string', ...(type.maxLength !== undefined ? { maxLength: type.maxLength } : {}) }, 'varchar', { maxLength: type.maxLength });
    case 'bpchar':
      return plain({ type: 'string', maxLength: type.maxLength ?? 1, description: `Fixed length ${type.maxLength ?? 1}, padded with spaces` }, 'bpchar', {
        maxLength: type.maxLength ?? 1,
      });
    case 'uuid':
      return plain({ type: 'string', format: 'uuid' }, 'uuid');
    case 'date':
      return plain({ type: 'string', format: 'date' }, 'date');
    case 'timestamp':
      return plain({ type: 'string', pattern: LOCAL_TIMESTAMP, description: 'Local timestamp as stored (ISO 8601, no time zone offset)' }, 'timestamp');
    case 'timestamptz':
      return plain({ type: 'string', format: 'date-time', description: 'Timestamp with its offset (ISO 8601)' }, 'timestamptz');
    case 'time':
      return plain({ type: 'string', pattern: TIME }, 'time');
    case 'timetz':
      return plain({ type: 'string', pattern: TIME_WITH_ZONE }, 'timetz');
    case 'json':
    case 'jsonb':
      return {
        schema: { description: `Any JSON value (${type.name})` },
        output: '{}',
        input: `{}::${cast}`,
        param: 'json',
        orderable: false,
        fixture: { kind: 'json', sql: cast },
      };
    case 'bytea':
      return {
        schema: { type: 'string', contentEncoding: 'base64', pattern: BASE64, description: 'Bytes, base64-encoded' },
        output: "translate(encode({}, 'base64'), E'\\n', '')",
        input: "decode({}, 'base64')",
        param: 'value',
        orderable: false,
        fixture: { kind: 'bytea', sql: 'bytea' },
      };
    default:
      return undefined;
  }
}

function loose(type: PgType, reason: string): TypeMapping {
  return {
    schema: { type: 'string', description: `${type.declared} in its Postgres text form` },
    output: '{}::text',
    input: `{}::${type.sql}`,
    param: 'value',
    orderable: false,
    fixture: { kind: 'text form', sql: type.sql },
    loose: reason,
  };
}

export function mapType(type: PgType): TypeMapping {
  if (type.kind === 'base') return base(type, type.sql) ?? loose(type, `${type.declared} has no exact JSON mapping: served and accepted as its text form`);
  if (type.kind === 'enum') {
    return {
      schema: { type: 'string', enum: type.enumLabels!, description: `One of the ${type.sql} values` },
      output: '{}',
      input: `{}::${type.sql}`,
      param: 'value',
      orderable: true,
      fixture: { kind: 'enum', labels: type.enumLabels!, sql: type.sql },
    };
  }
  if (type.kind === 'domain') {
    const underlying = mapType(type.base!);
    const checks = type.domainChecks?.length ? `, ${type.domainChecks.join(' AND ')}` : '';
    return {
      ...underlying,
      schema: {
        ...underlying.schema,
        description: [underlying.schema.description, `Domain ${type.sql} over ${type.base!.declared}${checks}`].filter(Boolean).join('. '),
      },
      input: underlying.input === `{}::${type.base!.sql}` ? `{}::${type.sql}` : underlying.input,
      fixture: { ...underlying.fixture, sql: type.sql },
      notNull: type.domainNotNull,
    };
  }
  if (type.kind === 'array') {
    const element = mapType(type.element!);
    if (element.loose || element.param === 'json' || element.fixture.kind === 'bytea' || type.element!.kind === 'array') {
      return loose(type, `${type.declared}: arrays of ${type.element!.declared} have no exact JSON mapping: served and accepted as the array's text form`);
    }
    const itemSchema: SchemaObject = { ...element.schema, type: [element.schema.type as 'string', 'null'] };
    if (element.schema.enum) itemSchema.enum = [...element.schema.enum, null];
    return {
      schema: { type: 'array', items: itemSchema },
      // Elements that need a cast to be exact (numeric) are cast as a whole array.
      output: element.output === '{}' ? '{}' : '{}::text[]',
      input: `{}::${type.sql}`,
      param: 'value',
      orderable: false,
      fixture: { kind: 'array', element: element.fixture, sql: type.sql },
    };
  }
  return loose(type, `${type.declared} has no exact JSON mapping: served and accepted as its text form`);
}

/** A column's value schema, null allowed when the column (and its domain) allow it. */
export function columnSchema(column: CatalogColumn, mapping: TypeMapping): SchemaObject {
  const nullable = !column.notNull && !mapping.notNull;
  const schema: SchemaObject = { ...mapping.schema };
  if (nullable && schema.type !== undefined) {
    schema.type = [schema.type as 'string', 'null'];
    if (schema.enum) schema.enum = [...schema.enum, null];
  }
  const notes = [column.comment, schema.description].filter(Boolean);
  if (column.identity) notes.push(`Identity (generated ${column.identity})`);
  else if (column.serial) notes.push('Serial: filled by its sequence');
  else if (column.generatedExpr) notes.push(`Generated: ${column.generatedExpr}`);
  else if (column.defaultExpr) notes.push(`Default: ${column.defaultExpr}`);
  if (notes.length) schema.description = notes.join('. ');
  else delete schema.description;
  return schema;
}

/** Fills a `{}` template (see TypeMapping.output/input). */
export const fill = (template: string, value: string) => template.replaceAll('{}', () => value);
