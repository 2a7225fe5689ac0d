import type { Handler } from '../lib/handler.ts';
// add-table: imports (npm run add-table appends one line per table above this marker)

/** Handlers of the tables served by `npm run add-table`, by operationId (see openapi/tables.ts). */
export const tableHandlers: Readonly<Record<string, Handler>> = {
  // add-table: entries (npm run add-table appends one line per table above this marker)
};
