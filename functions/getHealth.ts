import type { Handler } from '../lib/http/handler.ts';

/** Liveness only: answering at all means the process is up. Readiness checks the database. */
export const getHealth: Handler = async (_input, ctx) => ({
  body: {
    status: 'healthy',
    version: ctx.version,
    uptime_seconds: Math.round((Date.now() - ctx.startedAt) / 100) / 10,
  },
});
