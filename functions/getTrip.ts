import { NotFound } from '../lib/errors.ts';
import { JsonText, type Handler, type HandlerInput } from '../lib/handler.ts';
import { statementName, TRIP_COLUMNS } from './tripColumns.ts';

export type GetTripInput = HandlerInput<{ trip_id: number }>;

export const getTrip: Handler<GetTripInput> = async ({ params, signal }, ctx) => {
  // The trip as JSON text from Postgres (the same bytes JSON.stringify gives): no per-column
  // parsing into an object that would only be serialised again.
  const { rows } = await ctx.db.query<{ trip: string }>({
    name: statementName('trip_by_id_json', ctx.trips),
    text: `SELECT row_to_json(trip)::text AS trip FROM (SELECT ${TRIP_COLUMNS} FROM ${ctx.trips.qualified} WHERE id = $1) AS trip`,
    values: [params.trip_id],
  }, { signal });
  const trip = rows[0];
  if (!trip) throw new NotFound(`Trip ${params.trip_id} not found`);
  return { body: new JsonText(trip.trip) };
};
