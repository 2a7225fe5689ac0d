import type { Handler } from '../lib/handler.ts';
import { countTripsStatement } from './tripColumns.ts';

export const getTripCount: Handler = async ({ signal }, ctx) => {
  const { rows } = await ctx.db.query<{ total_trips: number }>(countTripsStatement(ctx.trips), { signal });
  return { body: { total_trips: rows[0]!.total_trips } };
};
