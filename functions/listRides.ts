// Written by `npm run add-table` for public.nyc_train_synced: yours to edit; re-running with --force replaces it.
import type { Handler } from '../lib/http/handler.ts';
import { type DialectInput, readCollection } from '../lib/http/dialectHandlers.ts';
import { RIDE_DIALECT } from './rideDialect.ts';

/** GET and HEAD /rides in PostgREST's dialect: select=, filters on every column, order=, limit/offset and Range, Prefer: count, one object, CSV. */
export const listRides: Handler<DialectInput> = (input, ctx) => readCollection(ctx, RIDE_DIALECT, input);
