import type { TableApi } from './tableApi.ts';
import { ridesApi } from './rides.ts';
// add-table: imports (npm run add-table appends one line per table above this marker)

/** The tables served by `npm run add-table`, in the order they were added. */
export const tableApis: readonly TableApi[] = [
  ridesApi,
  // add-table: entries (npm run add-table appends one line per table above this marker)
];
