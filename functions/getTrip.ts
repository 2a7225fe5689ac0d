import type { Context } from '../lib/http/serviceContext.ts';
import { KeyBatcher, serviceBatcherBounds } from '../lib/db/keyBatcher.ts';
import { NotFound } from '../lib/errors.ts';
import { JsonText, type Handler, type HandlerInput } from '../lib/http/handler.ts';
import { statementName, TRIP_COLUMNS } from './tripColumns.ts';

export type GetTripInput = HandlerInput<{ trip_id: number }>;

/** Most ids in one statement: a batch stays a handful of index probes and one small result. */
export const TRIP_BATCH_MAX = 64;

/**
 * Concurrent lookups on one database handle share statements: `WHERE id = ANY($1)`, each trip as
 * JSON text from Postgres (the same bytes JSON.stringify gives), so no per-column parsing into an
 * object that would only be serialised again.
 */
function tripsById(ctx: Context): KeyBatcher<number, string> {
  return ctx.db.batcher('trip_by_id', () => {
    const { db } = ctx;
    // Built once per batcher, not per statement.
    const name = statementName('trips_by_ids_json', ctx.trips);
    const text = `SELECT trip.id, row_to_json(trip)::text AS trip FROM (SELECT ${TRIP_COLUMNS} FROM ${ctx.trips.qualified} WHERE id = ANY($1::bigint[])) AS trip`;
    return new KeyBatcher<number, string>({
      maxBatch: TRIP_BATCH_MAX,
      ...serviceBatcherBounds(ctx.config.pool, db.pool),
      async load(ids, signal) {
        const { rows } = await db.query<{ id: number; trip: string }>({ name, text, values: [ids] }, signal ? { signal } : {});
        return rows.map((row) => [row.id, row.trip] as const);
      },
    });
  });
}

export const getTrip: Handler<GetTripInput> = async ({ params, signal }, ctx) => {
  const trip = await tripsById(ctx).get(params.trip_id, signal);
  if (trip === undefined) throw new NotFound(`Trip ${params.trip_id} not found`);
  return { body: new JsonText(trip) };
};
