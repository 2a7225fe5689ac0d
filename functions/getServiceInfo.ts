import type { Handler } from '../lib/http/handler.ts';

export const getServiceInfo: Handler = async (_input, ctx) => ({
  body: {
    name: 'Lakebase API',
    version: ctx.version,
    description: 'A fast, documented REST API over NYC taxi trips in Databricks Lakebase (PostgreSQL)',
    docs: '/docs',
    openapi: '/openapi.json',
  },
});
