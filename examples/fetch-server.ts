/**
 * The fetch adapter served by plain node:http: `npx tsx examples/fetch-server.ts` (the embedded
 * database when nothing is configured). The same `handle` runs as is on Bun
 * (`Bun.serve({ fetch: handle })`), Deno (`Deno.serve(handle)`) and edge-style hosts.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as NodeReadableStream } from 'node:stream/web';
import { createFetchHandler } from '../lib/http/adapters/fetch.ts';
import { refuseOpenByDefault } from '../lib/auth/openByDefault.ts';
import { loadConfig } from '../lib/ground/config.ts';
import { shutDownGracefully } from '../lib/ops/gracefulShutdown.ts';
import { openObservedContext } from '../lib/observedContext.ts';
import { apiService } from '../functions/index.ts';

const config = loadConfig(process.env);
refuseOpenByDefault(config, 'server');
// Telemetry as server.ts has it: exported over OTLP when OTEL_EXPORTER_OTLP_ENDPOINT is set, else not loaded.
const { ctx, telemetry } = await openObservedContext(config, process.env);
const handle = createFetchHandler(apiService, ctx);

async function serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const gone = new AbortController(); // aborted when the client hangs up
  res.once('close', () => gone.abort());
  const headers = new Headers();
  for (let i = 0; i < req.rawHeaders.length; i += 2) headers.append(req.rawHeaders[i]!, req.rawHeaders[i + 1]!);
  const body = req.method === 'GET' || req.method === 'HEAD' ? undefined : Readable.toWeb(req);
  const init = { method: req.method, headers, body, duplex: 'half', signal: gone.signal };
  const response = await handle(new Request(`http://localhost${req.url}`, init as RequestInit));
  res.setHeaders(response.headers); // setHeaders keeps every Set-Cookie
  // An upload answered before it was read whole (413): the rest of it still sits on the socket, so
  // the connection can serve no further request and, kept alive, would hold up shutdown. Close it.
  if (body && !req.complete) res.setHeader('connection', 'close');
  res.writeHead(response.status);
  if (response.body) await pipeline(Readable.fromWeb(response.body as NodeReadableStream), res);
  else res.end();
}

const server = createServer((req, res) => void serve(req, res).catch(() => res.destroy())); // a broken upload: drop it
server.listen(config.port, config.host, () => console.log(`fetch adapter on http://${config.host}:${(server.address() as { port: number }).port}`));

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  // As server.ts does: finish in-flight requests (closing connections still busy after the grace),
  // then close the pool (and stop the embedded database).
  const options = { server, ctx, drainSeconds: config.operations.shutdownDrainSeconds, graceMs: 10_000 };
  process.once(
    signal,
    () =>
      void shutDownGracefully(options, signal)
        .then(() => telemetry?.shutdown())
        .finally(() => process.exit(0)),
  );
}
