import { NotFound } from '../lib/errors.ts';
import type { Handler, HandlerInput } from '../lib/handler.ts';
import { statementName, TRIP_COLUMNS, type Trip } from './tripColumns.ts';

export type GetTripInput = HandlerInput<{ trip_id: number }>;

export const getTrip: Handler<GetTripInput> = async ({ params, signal }, ctx) => {
  const { rows } = await ctx.db.query<Trip>({
    name: statementName('trip_by_id', ctx.trips),
    text: `SELECT ${TRIP_COLUMNS} FROM ${ctx.trips.qualified} WHERE id = $1`,
    values: [params.trip_id],
  }, { signal });
  const trip = rows[0];
  if (!trip) throw new NotFound(`Trip ${params.trip_id} not found`);
  return { body: trip };
};
