import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type pg from 'pg';
import type { TripsTable } from '../../lib/http/serviceContext.ts';
import { offsetPageStatement, streamPageStatement } from '../../functions/tripColumns.ts';
import { startTestDatabase, type TestDatabase } from '../support/testService.ts';

// Large enough that the planner prices a sequential scan and an index scan differently (on a few
// thousand rows both are a handful of pages and either plan is fine).
const ROWS = 200_000;
const PAGE_SIZE = 100;
const trips: TripsTable = { schema: 'public', table: 'nyc_train_synced', qualified: '"public"."nyc_train_synced"' };

let database: TestDatabase;

before(async () => {
  database = await startTestDatabase(ROWS);
  await database.admin.query('ANALYZE nyc_train_synced');
});
after(async () => {
  await database?.stop();
});

interface PlanNode {
  'Node Type': string;
  'Relation Name'?: string;
  'Shared Hit Blocks'?: number;
  'Shared Read Blocks'?: number;
  Plans?: PlanNode[];
}

function nodeTypes(node: PlanNode): string[] {
  return [node['Node Type'], ...(node.Plans ?? []).flatMap(nodeTypes)];
}

/**
 * The plan Postgres runs for a statement prepared as the handler prepares it, with both the custom
 * plan (parameters known at planning) and the generic plan (what a prepared statement switches to
 * after five executions).
 */
async function plan(statement: pg.QueryConfig, mode: 'force_custom_plan' | 'force_generic_plan', analyze = false): Promise<PlanNode> {
  const client = await database.admin.connect();
  try {
    await client.query(`SET plan_cache_mode = ${mode}`);
    await client.query(`PREPARE page_statement AS ${statement.text}`);
    const args = (statement.values ?? []).map((v) => Number(v)).join(', ');
    const options = analyze ? 'ANALYZE, BUFFERS, FORMAT JSON' : 'FORMAT JSON';
    const { rows } = await client.query<{ 'QUERY PLAN': Array<{ Plan: PlanNode }> }>(`EXPLAIN (${options}) EXECUTE page_statement(${args})`);
    return rows[0]!['QUERY PLAN'][0]!.Plan;
  } finally {
    await client.query('DEALLOCATE ALL; RESET plan_cache_mode');
    client.release();
  }
}

function blocksTouched(node: PlanNode): number {
  return (node['Shared Hit Blocks'] ?? 0) + (node['Shared Read Blocks'] ?? 0);
}

describe('page statements stay index scans at any depth', () => {
  const deepCursor = ROWS - 1000;
  for (const mode of ['force_custom_plan', 'force_generic_plan'] as const) {
    test(`/trips/stream at cursor ${deepCursor} never scans the table sequentially (${mode})`, async () => {
      const types = nodeTypes(await plan(streamPageStatement(trips, deepCursor, PAGE_SIZE), mode));
      assert.ok(!types.includes('Seq Scan'), `plan has a Seq Scan: ${types.join(' > ')}`);
      assert.ok(
        types.some((t) => t.startsWith('Index')),
        `plan has no index scan: ${types.join(' > ')}`,
      );
    });

    test(`/trips/pages never scans the table sequentially to learn has_next (${mode})`, async () => {
      const types = nodeTypes(await plan(offsetPageStatement(trips, 1000, PAGE_SIZE), mode));
      assert.ok(!types.includes('Seq Scan'), `plan has a Seq Scan: ${types.join(' > ')}`);
    });
  }

  test('a deep stream page reads about as many buffers as the first page', async () => {
    // Buffer counts, not timings: deterministic on a shared machine. The old has_next probe read every
    // page before the cursor (about 4,000 here at cursor 199,000).
    const shallow = blocksTouched(await plan(streamPageStatement(trips, 0, PAGE_SIZE), 'force_generic_plan', true));
    const deep = blocksTouched(await plan(streamPageStatement(trips, deepCursor, PAGE_SIZE), 'force_generic_plan', true));
    assert.ok(shallow > 0, 'EXPLAIN ANALYZE reports buffers');
    assert.ok(deep <= shallow * 2 + 10, `deep page touched ${deep} buffers, the first page ${shallow}`);
  });
});
