// Written by `npm run add-table` for public.nyc_train_synced: yours to edit; re-running with --force replaces it.
import { JsonText, type Handler, type HandlerInput } from '../lib/http/handler.ts';
import { decodeCursor, encodeCursor, keysetCondition } from '../lib/tables/keysetCursor.ts';
import { refusedRow } from '../lib/tables/rowRefusals.ts';
import { filterSql } from '../lib/tables/tableFilters.ts';
import { RIDE_KEY, RIDE_TABLE, RIDE_WIRE, rideConstraints, rideFilters } from './rideTable.ts';

export type ListRidesInput = HandlerInput<Record<string, never>, { limit: number; cursor?: string; [filter: string]: unknown }>;

export const listRides: Handler<ListRidesInput> = async ({ query, signal }, ctx) => {
  const { limit, cursor } = query;
  // $1 asks for one row past the page: whether it exists says whether another page follows.
  const filters = filterSql(query, rideFilters, 2);
  const conditions = filters.conditions;
  const values: unknown[] = [limit + 1, ...filters.values];
  if (cursor !== undefined) {
    const after = decodeCursor(cursor, RIDE_KEY.values.length);
    conditions.push(keysetCondition(RIDE_KEY, values.length + 1));
    values.push(...after);
  }
  const where = conditions.length > 0 ? `WHERE ${conditions.join(' AND ')}` : '';
  try {
    const { rows } = await ctx.db.query<{ item: string; key: string }>(
      {
        // The text depends only on which filters are used and whether a cursor is: one prepared statement each.
        name: `listRides:${filters.key}:${cursor === undefined ? 'first' : 'after'}`,
        text: `SELECT row_to_json(r)::text AS item, ${RIDE_KEY.json} AS key FROM ${RIDE_TABLE} AS t ${RIDE_WIRE} ${where} ORDER BY ${RIDE_KEY.columns.join(', ')} LIMIT $1`,
        values,
      },
      { signal },
    );
    const page = rows.slice(0, limit);
    // The page's last row is the next page's cursor, when a row past the page came back.
    const last = rows.length > limit ? page[page.length - 1] : undefined;
    const pagination = { limit, has_next: last !== undefined, next_cursor: last ? encodeCursor(last.key) : null };
    return { body: new JsonText(`{"items":[${page.map((row) => row.item).join(',')}],"pagination":${JSON.stringify(pagination)}}`) };
  } catch (err) {
    // A made-up cursor or filter value Postgres cannot read as the column's type is the caller's 400.
    throw refusedRow(err, { constraints: rideConstraints, fields: query, fallbackField: cursor !== undefined ? 'cursor' : (filters.used[0] ?? 'query') });
  }
};
