// Written by `npm run add-table` for public.nyc_train_synced: yours to edit; re-running with --force replaces it.
import { NotFound } from '../lib/errors.ts';
import { JsonText, type Handler, type HandlerInput } from '../lib/http/handler.ts';
import { type KeyLookup, lookupByKey } from '../lib/tables/keyLookup.ts';
import { refusedRow } from '../lib/tables/rowRefusals.ts';
import { RIDE_TABLE, RIDE_WIRE, rideConstraints } from './rideTable.ts';

export type GetRideInput = HandlerInput<{ id: number }>;

/**
 * Concurrent reads of single rows share one statement (lib/tables/keyLookup.ts): the keys arrive as
 * text arrays, and each row comes back with the position of the key it matched.
 */
const BY_KEY: KeyLookup = {
  name: 'getRide',
  text: `SELECT k.n, row_to_json(r)::text AS item FROM unnest($1::text[]) WITH ORDINALITY AS k(k1, n) JOIN ${RIDE_TABLE} AS t ON t."id" = k.k1::bigint ${RIDE_WIRE}`,
};

export const getRide: Handler<GetRideInput> = async ({ params, signal }, ctx) => {
  try {
    const item = await lookupByKey(ctx, BY_KEY, [params.id], signal);
    if (item === undefined) throw new NotFound(`No rides row with id ${params.id}`);
    return { body: new JsonText(item) };
  } catch (err) {
    throw refusedRow(err, { constraints: rideConstraints, fields: params, fallbackField: 'id' });
  }
};
