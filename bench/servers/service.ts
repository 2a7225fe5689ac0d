/**
 * The service as `npm start` serves it (lib/http/serviceServer.ts: the Express adapter behind
 * lib/http/httpServer.ts, with h2c accepted on the same port), everything on: validation, request ids,
 * security headers, the results cache, metrics, and one JSON log line per request at info level on
 * stdout, which the orchestrator points at a file. It reaches the bench database as plain
 * PostgreSQL (PG* variables). `node` as the first argument serves the same router through the bare
 * node:http adapter instead, to show what Express costs.
 */
import { createServer } from 'node:http';
import { createNodeHttpHandler } from '../../lib/http/adapters/nodeHttp.ts';
import { loadConfig } from '../../lib/config.ts';
import { createLogger } from '../../lib/ops/logger.ts';
import { openContext } from '../../lib/openContext.ts';
import { createRouter } from '../../lib/http/router.ts';
import { createServiceServer } from '../../lib/http/serviceServer.ts';
import { listenAndAnnounce } from './announce.ts';

const adapter = process.argv[2] === 'node' ? 'node' : 'express';
const config = loadConfig(process.env);
const logger = createLogger({ level: config.logLevel, pretty: false });
const ctx = await openContext(config, process.env, logger);
const router = createRouter(ctx);
const server = adapter === 'node'
  ? createServer(createNodeHttpHandler(router, { maxBodyBytes: config.maxBodyBytes }))
  : createServiceServer(router, config);
await listenAndAnnounce(server, () => ctx.close());
