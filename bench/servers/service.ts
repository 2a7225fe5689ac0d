/**
 * The service as `npm start` serves it (lib/http/serviceServer.ts: the Express adapter behind
 * lib/http/httpServer.ts, with h2c accepted on the same port), everything on: validation, request ids,
 * security headers, the results cache, metrics, and one JSON log line per request at info level on
 * stdout, which the orchestrator points at a file. It reaches the bench database as plain
 * PostgreSQL (PG* variables). `node` as the first argument serves the same router through the bare
 * node:http adapter instead, to show what Express costs. With OTEL_EXPORTER_OTLP_ENDPOINT set (the
 * telemetry scenarios) it also exports traces, metrics and logs, as server.ts does.
 */
import { createServer } from 'node:http';
import { createNodeHttpHandler } from '../../lib/http/adapters/nodeHttp.ts';
import { loadConfig } from '../../lib/ground/config.ts';
import { createRouter } from '../../lib/http/router.ts';
import { createServiceServer } from '../../lib/http/serviceServer.ts';
import { openObservedContext } from '../../lib/observedContext.ts';
import { listenAndAnnounce } from './announce.ts';
import { apiService } from '../../functions/index.ts';

const adapter = process.argv[2] === 'node' ? 'node' : 'express';
const config = loadConfig(process.env);
// As server.ts: OpenTelemetry export only when OTEL_EXPORTER_OTLP_ENDPOINT is set (the telemetry scenarios).
const { ctx, telemetry } = await openObservedContext(config, process.env, { pretty: false });
const router = createRouter(apiService, ctx);
const server = adapter === 'node' ? createServer(createNodeHttpHandler(router, { maxBodyBytes: config.maxBodyBytes })) : createServiceServer(router, config);
await listenAndAnnounce(server, async () => {
  await ctx.close();
  await telemetry?.shutdown();
});
