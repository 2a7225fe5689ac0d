import { firstRow } from '../lib/db/firstRow.ts';
import { JsonText, type Handler, type HandlerInput } from '../lib/http/handler.ts';
import { streamPageStatement, type TripPageJsonRow } from './tripColumns.ts';

export type StreamTripsInput = HandlerInput<Record<string, never>, { cursor: number; page_size: number }>;

export const streamTrips: Handler<StreamTripsInput> = async ({ query, signal }, ctx) => {
  const { cursor, page_size: pageSize } = query;
  // Keyset pagination: an index range scan from the cursor, so page cost is flat however deep.
  const page = await ctx.db.query<TripPageJsonRow>(streamPageStatement(ctx.trips, cursor, pageSize), { signal });
  const { trips, last_id: lastId, has_next: hasNext } = firstRow(page, 'the stream page query');
  const pagination = {
    page_size: pageSize,
    has_next: hasNext,
    next_cursor: hasNext ? lastId : null,
    has_previous: cursor > 0,
  };
  return { body: new JsonText(`{"trips":${trips},"pagination":${JSON.stringify(pagination)}}`) };
};
