import type { Handler } from '../lib/handler.ts';
import { getHealth } from './getHealth.ts';
import { getReadiness } from './getReadiness.ts';
import { getServiceInfo } from './getServiceInfo.ts';
import { getTrip } from './getTrip.ts';
import { getTripAnalytics } from './getTripAnalytics.ts';
import { getTripCount } from './getTripCount.ts';
import { getTripSample } from './getTripSample.ts';
import { listTripPages } from './listTripPages.ts';
import { streamTrips } from './streamTrips.ts';
import { tableHandlers } from './tableHandlers.ts';
import { updateTripVendor } from './updateTripVendor.ts';

/** Handlers by operationId: the router pairs each with its entry in the OpenAPI document. */
export const handlers: Readonly<Record<string, Handler>> = {
  getServiceInfo,
  getHealth,
  getReadiness,
  getTripCount,
  getTripSample,
  getTripAnalytics,
  listTripPages,
  streamTrips,
  getTrip,
  updateTripVendor,
  // Tables served by `npm run add-table`.
  ...tableHandlers,
};
