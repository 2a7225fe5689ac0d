import { LRUCache } from 'lru-cache';
import type pg from 'pg';

/** Plans remembered: statement shapes times the magnitudes of their numbers (see shapeKey). */
const MAX_SHAPES = 4096;
/** A plan's estimate is re-read this often, so a table that grows (or is ANALYZEd) is judged anew. */
const PLAN_TTL_MS = 5 * 60_000;

/** Plans a statement without running it (`EXPLAIN`), answering its total estimated cost. */
export type ExplainCost = (statement: pg.QueryConfig) => Promise<number>;

/**
 * The key a statement's estimate is remembered under: its text, and the order of magnitude of each
 * number it is given. What a statement costs turns on its shape (which columns it filters and
 * sorts, and whether an index serves them) and on its numbers' size (an OFFSET of 900,000 against
 * one of 10): a factor of two within a bucket cannot move a cost across the bound by much, and the
 * keys stay few (keyset cursors over a million ids make about twenty). Other values (text, dates)
 * change the planner's row estimates only within one shape, so they are left out.
 */
export function shapeKey(statement: pg.QueryConfig): string {
  const magnitudes = (statement.values ?? []).map(magnitude).join(',');
  return `${statement.text}\u0000${magnitudes}`;
}

function magnitude(value: unknown): string {
  let n: number | undefined;
  if (typeof value === 'number' && Number.isFinite(value)) n = value;
  else if (typeof value === 'bigint') n = Number(value);
  else if (typeof value === 'string' && /^-?\d{1,19}$/.test(value)) n = Number(value);
  if (n === undefined) return '*';
  return `${n < 0 ? '-' : ''}${Math.floor(Math.log2(Math.abs(n) + 1))}`;
}

export interface StatementCostsOptions {
  /** DB_SCAN_COST: the planner's estimate (its cost units) from which a statement is heavy. */
  heavyFrom: number;
}

/** What a plan is fetched with: the statement of the key's first asker, and how to plan it. */
interface PlanRequest {
  statement: pg.QueryConfig;
  explain: ExplainCost;
}

/**
 * Tells heavy statements (a count or aggregate over the table, a deep OFFSET, a filter or sort no
 * index serves) from light ones (a keyset page, the sample's index probes, a range an index bounds)
 * by the planner's own estimate, as Supabase's pg_plan_filter does inside Postgres. `EXPLAIN`
 * without ANALYZE only plans: it costs a round trip, once per shape and magnitude (shapeKey) every
 * few minutes, and concurrent requests of one shape share it (lru-cache's fetch). The estimate does
 * not depend on how busy the machine is, so a lone caller's keyset pages stay light under any load.
 */
export class StatementCosts {
  private readonly plans = new LRUCache<string, number, PlanRequest>({
    max: MAX_SHAPES,
    ttl: PLAN_TTL_MS,
    fetchMethod: (_key, _stale, { context }) => {
      this.explained++;
      return context.explain(context.statement);
    },
  });
  private explained = 0;

  constructor(private readonly options: StatementCostsOptions) {}

  /**
   * Whether `statement` is heavy. A statement the planner refuses (a bad value the statement would
   * also refuse) is not remembered and counts as heavy: running it is what reports the error.
   */
  async isHeavy(statement: pg.QueryConfig, explain: ExplainCost): Promise<boolean> {
    const key = shapeKey(statement);
    const known = this.plans.get(key);
    if (known !== undefined) return known >= this.options.heavyFrom;
    try {
      const cost = await this.plans.fetch(key, { context: { statement, explain } });
      return cost === undefined || cost >= this.options.heavyFrom;
    } catch {
      return true;
    }
  }

  /** `EXPLAIN`s sent so far, and shapes remembered now. */
  stats(): { explained: number; remembered: number } {
    return { explained: this.explained, remembered: this.plans.size };
  }
}

/** What the planner expects of a statement: its total cost, and the rows it returns. */
export interface PlanEstimate {
  totalCost: number;
  rows: number;
}

/** `statement` planned but not run, as JSON (its name dropped: a prepared statement is for running). */
export function explainStatement(statement: pg.QueryConfig): pg.QueryConfig {
  return { text: `EXPLAIN (FORMAT JSON) ${statement.text}`, values: statement.values };
}

/** The top of a plan from `EXPLAIN (FORMAT JSON)`: its total estimated cost and rows. */
export function planEstimate(rows: Array<Record<string, unknown>>): PlanEstimate {
  const plan = (rows[0]?.['QUERY PLAN'] as Array<{ Plan: { 'Total Cost': number; 'Plan Rows': number } }> | undefined)?.[0]?.Plan;
  if (!plan || typeof plan['Total Cost'] !== 'number' || typeof plan['Plan Rows'] !== 'number') throw new Error('EXPLAIN gave no estimate');
  return { totalCost: plan['Total Cost'], rows: plan['Plan Rows'] };
}
