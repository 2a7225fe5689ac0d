import { JsonText, type Handler, type HandlerInput } from '../lib/handler.ts';
import { statementName, TRIP_COLUMNS, tripPageJsonSql, type TripPageJsonRow } from './tripColumns.ts';

export type StreamTripsInput = HandlerInput<Record<string, never>, { cursor: number; page_size: number }>;

export const streamTrips: Handler<StreamTripsInput> = async ({ query, signal }, ctx) => {
  const { cursor, page_size: pageSize } = query;
  // Keyset pagination: an index range scan from the cursor, so page cost is flat however deep.
  const { rows } = await ctx.db.query<TripPageJsonRow>({
    name: statementName('trip_stream_json', ctx.trips),
    text: tripPageJsonSql(ctx.trips, `SELECT ${TRIP_COLUMNS} FROM ${ctx.trips.qualified} WHERE id > $1 ORDER BY id LIMIT $2`),
    values: [cursor, pageSize],
  }, { signal });
  const { trips, last_id: lastId, has_next: hasNext } = rows[0]!;
  const pagination = {
    page_size: pageSize,
    has_next: hasNext,
    next_cursor: hasNext ? lastId : null,
    has_previous: cursor > 0,
  };
  return { body: new JsonText(`{"trips":${trips},"pagination":${JSON.stringify(pagination)}}`) };
};
