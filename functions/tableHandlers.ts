import type { Handler } from '../lib/http/handler.ts';
import { countRides } from './countRides.ts';
import { listRides } from './listRides.ts';
import { getRide } from './getRide.ts';
// add-table: imports (npm run add-table appends one line per table above this marker)

/** Handlers of the tables served by `npm run add-table`, by operationId (see openapi/tables.ts). */
export const tableHandlers: Readonly<Record<string, Handler>> = {
  countRides,
  listRides,
  getRide,
  // add-table: entries (npm run add-table appends one line per table above this marker)
};
