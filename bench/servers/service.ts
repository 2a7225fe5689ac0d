/**
 * The service as it runs in production (context + router + adapter), everything on: validation,
 * request ids, the results cache, and one JSON log line per request at info level on stdout, which
 * the orchestrator points at a file. It reaches the bench database as plain PostgreSQL (PG*
 * variables). `node` as the first argument serves the router through bare node:http instead of
 * Express, to show what Express costs.
 */
import { createServer } from 'node:http';
import { createExpressApp } from '../../lib/adapters/express.ts';
import { createNodeHttpHandler } from '../../lib/adapters/nodeHttp.ts';
import { loadConfig } from '../../lib/config.ts';
import { createLogger } from '../../lib/logger.ts';
import { openContext } from '../../lib/openContext.ts';
import { createRouter } from '../../lib/router.ts';
import { listenAndAnnounce } from './announce.ts';

const adapter = process.argv[2] === 'node' ? 'node' : 'express';
const config = loadConfig(process.env);
const logger = createLogger({ level: config.logLevel, pretty: false });
const ctx = await openContext(config, process.env, logger);
const router = createRouter(ctx);
const options = { maxBodyBytes: config.maxBodyBytes };
const server = adapter === 'node' ? createServer(createNodeHttpHandler(router, options)) : createServer(createExpressApp(router, options));
await listenAndAnnounce(server, () => ctx.close());
