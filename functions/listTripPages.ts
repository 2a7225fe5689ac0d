import type { Handler, HandlerInput } from '../lib/handler.ts';
import { countTripsStatement, statementName, TRIP_COLUMNS, type Trip } from './tripColumns.ts';

export type ListTripPagesInput = HandlerInput<Record<string, never>, { page: number; page_size: number; include_count: boolean }>;

export const listTripPages: Handler<ListTripPagesInput> = async ({ query, signal }, ctx) => {
  const { page, page_size: pageSize, include_count: includeCount } = query;
  const offset = (page - 1) * pageSize;
  // One row beyond the page tells whether a next page exists without counting the table.
  const pageQuery = ctx.db.query<Trip>({
    name: statementName('trip_page', ctx.trips),
    text: `SELECT ${TRIP_COLUMNS} FROM ${ctx.trips.qualified} ORDER BY id LIMIT $1 OFFSET $2`,
    values: [pageSize + 1, offset],
  }, { signal });
  const countQuery = includeCount
    ? ctx.db.query<{ total_trips: number }>(countTripsStatement(ctx.trips), { signal })
    : undefined;
  const [pageResult, countResult] = await Promise.all([pageQuery, countQuery]);

  const rows = pageResult.rows;
  const hasNext = rows.length > pageSize;
  const totalCount = countResult ? countResult.rows[0]!.total_trips : null;
  return {
    body: {
      trips: hasNext ? rows.slice(0, pageSize) : rows,
      pagination: {
        page,
        page_size: pageSize,
        total_pages: totalCount === null ? null : Math.ceil(totalCount / pageSize),
        total_count: totalCount,
        has_next: hasNext,
        has_previous: page > 1,
      },
    },
  };
};
