import type { Handler, HandlerInput } from '../lib/handler.ts';
import { statementName, TRIP_COLUMNS, type Trip } from './tripColumns.ts';

export type StreamTripsInput = HandlerInput<Record<string, never>, { cursor: number; page_size: number }>;

export const streamTrips: Handler<StreamTripsInput> = async ({ query, signal }, ctx) => {
  const { cursor, page_size: pageSize } = query;
  // Keyset pagination: an index range scan from the cursor, so page cost is flat however deep.
  const { rows } = await ctx.db.query<Trip>({
    name: statementName('trip_stream', ctx.trips),
    text: `SELECT ${TRIP_COLUMNS} FROM ${ctx.trips.qualified} WHERE id > $1 ORDER BY id LIMIT $2`,
    values: [cursor, pageSize + 1],
  }, { signal });
  const hasNext = rows.length > pageSize;
  const trips = hasNext ? rows.slice(0, pageSize) : rows;
  return {
    body: {
      trips,
      pagination: {
        page_size: pageSize,
        has_next: hasNext,
        next_cursor: hasNext ? trips[trips.length - 1]!.id : null,
        has_previous: cursor > 0,
      },
    },
  };
};
