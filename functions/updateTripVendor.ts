import { NotFound } from '../lib/errors.ts';
import type { Handler, HandlerInput } from '../lib/http/handler.ts';
import { statementName, TRIP_COLUMNS, type Trip } from './tripColumns.ts';

export type UpdateTripVendorInput = HandlerInput<{ trip_id: number }, Record<string, never>, { vendor_id: string }>;

export const updateTripVendor: Handler<UpdateTripVendorInput> = async ({ params, body }, ctx) => {
  // A single UPDATE … RETURNING is atomic: the trip is either changed and returned, or untouched.
  const { rows } = await ctx.db.query<Trip>({
    name: statementName('trip_update_vendor', ctx.trips),
    text: `UPDATE ${ctx.trips.qualified} SET vendor_id = $2 WHERE id = $1 RETURNING ${TRIP_COLUMNS}`,
    values: [params.trip_id, body.vendor_id],
  });
  const trip = rows[0];
  if (!trip) throw new NotFound(`Trip ${params.trip_id} not found`);
  return { body: trip };
};
