import type { Handler } from '../lib/http/handler.ts';
import { checkReadiness } from '../lib/ops/readiness.ts';

/** Readiness: 200 when this instance can serve traffic, 503 naming what is not ready. Never cached. */
export const getReadiness: Handler = async (_input, ctx) => {
  const readiness = await checkReadiness(ctx);
  if (readiness.status === 'ready') return { body: readiness };
  return { status: 503, headers: { 'retry-after': '5' }, body: readiness };
};
