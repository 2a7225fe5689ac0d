import { firstRow } from '../lib/db/firstRow.ts';
import type { Handler } from '../lib/http/handler.ts';
import { countTripsStatement } from './tripColumns.ts';

export const getTripCount: Handler = async ({ signal }, ctx) => {
  const result = await ctx.db.query<{ total_trips: number }>(countTripsStatement(ctx.trips), { signal });
  return { body: { total_trips: firstRow(result, 'count(*)').total_trips } };
};
