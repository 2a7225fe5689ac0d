// Written by `npm run add-table` for public.nyc_train_synced: yours to edit; re-running with --force replaces it.
import { firstRow } from '../lib/db/firstRow.ts';
import type { Handler, HandlerInput } from '../lib/http/handler.ts';
import { refusedRow } from '../lib/tables/rowRefusals.ts';
import { filterSql } from '../lib/tables/tableFilters.ts';
import { RIDE_TABLE, rideConstraints, rideFilters } from './rideTable.ts';

export type CountRidesInput = HandlerInput<Record<string, never>, Record<string, unknown>>;

export const countRides: Handler<CountRidesInput> = async ({ query, signal }, ctx) => {
  const filters = filterSql(query, rideFilters, 1);
  const where = filters.conditions.length > 0 ? `WHERE ${filters.conditions.join(' AND ')}` : '';
  try {
    const result = await ctx.db.query<{ count: number }>(
      {
        name: `countRides:${filters.key}`,
        text: `SELECT count(*) AS count FROM ${RIDE_TABLE} AS t ${where}`,
        values: filters.values,
      },
      { signal },
    );
    return { body: { count: firstRow(result, 'count(*)').count } };
  } catch (err) {
    throw refusedRow(err, { constraints: rideConstraints, fields: query, fallbackField: filters.used[0] ?? 'query' });
  }
};
