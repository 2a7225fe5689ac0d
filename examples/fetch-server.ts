/**
 * The handlers behind the WHATWG fetch adapter, served by plain node:http. The same
 * `(Request) => Promise<Response>` function runs as is on Bun (`Bun.serve({ fetch })`),
 * Deno (`Deno.serve(fetch)`) and edge-style hosts. Run: `npx tsx examples/fetch-server.ts`.
 */
import { createServer } from 'node:http';
import { Readable } from 'node:stream';
import { createFetchHandler } from '../lib/adapters/fetch.ts';
import { loadConfig } from '../lib/config.ts';
import { createLogger } from '../lib/logger.ts';
import { openContext } from '../lib/openContext.ts';
import { createRouter } from '../lib/router.ts';

const config = loadConfig(process.env);
const ctx = await openContext(config, process.env, createLogger({ level: config.logLevel }));
const handle = createFetchHandler(createRouter(ctx), { maxBodyBytes: config.maxBodyBytes });

createServer(async (req, res) => {
  const hasBody = req.method !== 'GET' && req.method !== 'HEAD';
  const request = new Request(`http://${req.headers.host ?? 'localhost'}${req.url}`, {
    method: req.method,
    headers: req.headers as Record<string, string>,
    body: hasBody ? (Readable.toWeb(req) as ReadableStream) : undefined,
    duplex: 'half',
  } as RequestInit);
  const response = await handle(request);
  res.writeHead(response.status, Object.fromEntries(response.headers));
  res.end(Buffer.from(await response.arrayBuffer()));
}).listen(config.port, config.host, () => console.log(`fetch adapter on http://${config.host}:${config.port}`));
