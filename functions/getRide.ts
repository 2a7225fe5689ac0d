// Written by `npm run add-table` for public.nyc_train_synced: yours to edit; re-running with --force replaces it.
import { NotFound } from '../lib/errors.ts';
import { JsonText, type Handler, type HandlerInput } from '../lib/handler.ts';
import { refusedRow } from '../lib/tables/rowRefusals.ts';
import { RIDE_TABLE, RIDE_WIRE, rideConstraints } from './rideTable.ts';

export type GetRideInput = HandlerInput<{ id: number }>;

export const getRide: Handler<GetRideInput> = async ({ params, signal }, ctx) => {
  try {
    const { rows } = await ctx.db.query<{ item: string }>(
      {
        name: 'getRide',
        text: `SELECT row_to_json(r)::text AS item FROM ${RIDE_TABLE} AS t ${RIDE_WIRE} WHERE t."id" = $1::bigint`,
        values: [params.id],
      },
      { signal },
    );
    const row = rows[0];
    if (!row) throw new NotFound(`No rides row with id ${params.id}`);
    return { body: new JsonText(row.item) };
  } catch (err) {
    throw refusedRow(err, { constraints: rideConstraints, fields: params, fallbackField: 'id' });
  }
};
