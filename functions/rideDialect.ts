// Written by `npm run add-table` for public.nyc_train_synced: yours to edit; re-running with --force replaces it.
import type { PostgrestTable, TableNarrowing } from '../lib/postgrest/tableShape.ts';
import { RIDE_CATALOG, type RideColumn } from './rideTable.ts';

/**
 * What clients may ask of /rides in PostgREST's dialect: yours to decide, and the handlers need no
 * change. `--refresh` rewrites ./rideTable.ts from the catalog but never this file; it says
 * when a column listed here is gone (so does `npm run typecheck`) or a new column is left out.
 * - filterable: the columns filters (inside or= and and= too) may name; another is a 400 PGRST100 naming it.
 * - orderable: the columns order= may name.
 * - maxRows: the most rows one response carries (Content-Range shows the cut); else DB_MAX_ROWS.
 * Left out, every column is filterable and orderable, and a column the table gains is too.
 */
const narrowing: TableNarrowing<RideColumn> = {
  // filterable: ['id', 'vendor_id'],
  // orderable: ['id', 'vendor_id'],
  // maxRows: 500,
};

/** /rides as the handlers serve it: the table as the catalog describes it, narrowed as above. */
export const RIDE_DIALECT: PostgrestTable = { ...RIDE_CATALOG, ...narrowing };
