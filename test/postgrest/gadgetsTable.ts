import type pg from 'pg';
import type { PostgrestTable } from '../../lib/postgrest/tableShape.ts';

/**
 * A table of every kind of column the dialect treats differently (text, numbers, numeric as exact
 * text, boolean, arrays, jsonb, timestamptz, uuid, a generated tsvector, a default), with CHECK
 * and UNIQUE constraints, for the dialect's tests.
 */
export const GADGETS_DDL = `
  DROP TABLE IF EXISTS public.gadgets;
  CREATE TABLE public.gadgets (
    id bigint PRIMARY KEY,
    name text NOT NULL,
    price numeric(10, 2),
    qty integer CHECK (qty >= 0),
    active boolean,
    tags text[],
    meta jsonb,
    made timestamptz,
    code uuid UNIQUE,
    note text DEFAULT 'none',
    doc tsvector GENERATED ALWAYS AS (to_tsvector('english', name)) STORED
  );
  INSERT INTO public.gadgets (id, name, price, qty, active, tags, meta, made, code)
  SELECT i,
         (ARRAY['gadget', 'widget', 'Gizmo', 'sprocket'])[1 + i % 4] || ' ' || i,
         CASE WHEN i % 5 = 0 THEN NULL ELSE (i * 1.25)::numeric(10, 2) END,
         CASE WHEN i % 6 = 0 THEN NULL ELSE (i * 7) % 11 END,
         CASE WHEN i % 3 = 0 THEN NULL ELSE i % 2 = 0 END,
         CASE i % 4 WHEN 0 THEN ARRAY['red', 'blue'] WHEN 1 THEN ARRAY['green', 'red'] WHEN 2 THEN ARRAY['blue', 'x'] ELSE ARRAY['y', 'z'] END,
         jsonb_build_object('size', (ARRAY['S', 'M', 'L'])[1 + i % 3], 'n', i, 'nested', jsonb_build_object('even', i % 2 = 0)),
         timestamptz '2024-01-01 00:00:00+00' + make_interval(days => i),
         md5(i::text)::uuid
  FROM generate_series(1, 20) AS i;
`;

export const GADGETS: PostgrestTable = {
  name: 'gadgets',
  relation: '"public"."gadgets"',
  primaryKey: ['id'],
  maxRows: 1000,
  columns: [
    { name: 'id', sql: 'int8', kind: 'number' },
    { name: 'name', sql: 'text', kind: 'text' },
    { name: 'price', sql: 'numeric', kind: 'number', output: '{}::text' },
    { name: 'qty', sql: 'int4', kind: 'number' },
    { name: 'active', sql: 'bool', kind: 'boolean' },
    { name: 'tags', sql: 'text[]', kind: 'array' },
    { name: 'meta', sql: 'jsonb', kind: 'json', json: true },
    { name: 'made', sql: 'timestamptz', kind: 'temporal' },
    { name: 'code', sql: 'uuid', kind: 'uuid' },
    { name: 'note', sql: 'text', kind: 'text', default: "'none'::text" },
    { name: 'doc', sql: 'tsvector', kind: 'tsvector', output: '{}::text', readOnly: true },
  ],
};

/** The whole table's content, to show a refused request changed nothing. */
export async function tableChecksum(admin: pg.Pool): Promise<string> {
  const { rows } = await admin.query<{ sum: string }>("SELECT md5(coalesce(string_agg(g::text, '|' ORDER BY id), '')) AS sum FROM public.gadgets AS g");
  return rows[0]?.sum ?? '';
}
