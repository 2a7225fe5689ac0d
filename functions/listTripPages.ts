import { firstRow } from '../lib/db/firstRow.ts';
import { JsonText, type Handler, type HandlerInput } from '../lib/http/handler.ts';
import { countTripsStatement, offsetPageStatement, type TripPageJsonRow } from './tripColumns.ts';

export type ListTripPagesInput = HandlerInput<Record<string, never>, { page: number; page_size: number; include_count: boolean }>;

export const listTripPages: Handler<ListTripPagesInput> = async ({ query, signal }, ctx) => {
  const { page, page_size: pageSize, include_count: includeCount } = query;
  const offset = (page - 1) * pageSize;
  // Whether a next page exists comes from one row fetched past the page, not a count.
  const pageQuery = ctx.db.query<TripPageJsonRow>(offsetPageStatement(ctx.trips, offset, pageSize), { signal });
  const countQuery = includeCount ? ctx.db.query<{ total_trips: number }>(countTripsStatement(ctx.trips), { signal }) : undefined;
  const [pageResult, countResult] = await Promise.all([pageQuery, countQuery]);

  const { trips, has_next: hasNext } = firstRow(pageResult, 'the page query');
  const totalCount = countResult ? firstRow(countResult, 'count(*)').total_trips : null;
  const pagination = {
    page,
    page_size: pageSize,
    total_pages: totalCount === null ? null : Math.ceil(totalCount / pageSize),
    total_count: totalCount,
    has_next: hasNext,
    has_previous: page > 1,
  };
  return { body: new JsonText(`{"trips":${trips},"pagination":${JSON.stringify(pagination)}}`) };
};
