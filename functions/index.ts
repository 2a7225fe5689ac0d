import type { Handler } from '../lib/http/handler.ts';
import type { ServiceDefinition } from '../lib/http/router.ts';
import { buildOpenApiDocument } from '../openapi/document.ts';
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

/** The service the router serves: these handlers behind the hand-written contract (openapi/document.ts). */
export const apiService: ServiceDefinition = {
  handlers,
  document: (ctx) => buildOpenApiDocument(ctx.version, { access: ctx.config.access.mode, auth: ctx.config.auth.mode }),
};
