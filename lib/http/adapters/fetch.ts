import type { Context } from '../serviceContext.ts';
import { type NeutralRequest, type NeutralResponse, StreamedBody } from '../../ground/neutralRequest.ts';
import { createRouter, type ServiceDefinition } from '../router.ts';

/** Statuses whose response may not carry a body: `new Response(body, …)` throws for them. */
const NULL_BODY_STATUSES = new Set([101, 103, 204, 205, 304]);

/**
 * Reads at most one byte past the limit, then cancels the stream: the router answers 413 from
 * the length, and a huge (or endless) upload is never buffered whole.
 */
async function readBody(request: Request, limit: number): Promise<Buffer | undefined> {
  if (!request.body) return undefined;
  // Declared larger than the limit: the router answers 413 from Content-Length without the body.
  if (Number(request.headers.get('content-length')) > limit) {
    await request.body.cancel().catch(() => undefined);
    return undefined;
  }
  const chunks: Uint8Array[] = [];
  let size = 0;
  const reader = request.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    size += value.byteLength;
    if (size > limit) {
      await reader.cancel();
      break;
    }
  }
  if (size === 0) return undefined;
  const body = Buffer.concat(chunks, size);
  return size > limit ? body.subarray(0, limit + 1) : body;
}

/** Header names arrive lower-cased; repeated headers are already joined by `Headers`. */
function headersOf(request: Request): Record<string, string> {
  const headers: Record<string, string> = {};
  request.headers.forEach((value, name) => {
    headers[name] = value;
  });
  return headers;
}

/**
 * A streamed body as a byte stream the host reads at its pace; the host cancelling it (the client
 * went away) ends the producer through the iterator's return.
 */
function byteStream(body: StreamedBody): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder();
  const chunks = body[Symbol.asyncIterator]();
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      const { done, value } = await chunks.next();
      if (done) controller.close();
      else controller.enqueue(encoder.encode(value));
    },
    async cancel() {
      await body.cancel();
    },
  });
}

function toResponse(method: string, response: NeutralResponse): Response {
  const { body, status } = response;
  const bodyless = body === undefined || method === 'HEAD' || NULL_BODY_STATUSES.has(status);
  if (body instanceof StreamedBody) {
    if (!bodyless) return new Response(byteStream(body), { status, headers: response.headers });
    void body.cancel();
  }
  const bodyInit: BodyInit | null =
    bodyless || body instanceof StreamedBody
      ? null
      : typeof body === 'string'
        ? body
        : new Uint8Array(body.buffer as ArrayBuffer, body.byteOffset, body.byteLength); // a view, not a copy
  return new Response(bodyInit, { status, headers: response.headers });
}

/**
 * What a host may tell about the connection, in Deno.serve's shape (its handler's second argument):
 * the peer's address, for per-caller limits. Hosts that pass nothing make every caller without a
 * verified identity one caller, unless TRUSTED_PROXIES names the host's proxy.
 */
export interface FetchConnectionInfo {
  remoteAddr?: { hostname?: string };
}

/**
 * The WHATWG fetch adapter: `(Request) => Promise<Response>`, the shape Node's own `fetch`
 * types, Bun, Deno and edge-style hosts serve. It takes the context, like the Lambda adapter,
 * builds the shared router once, and takes the body limit from the context's configuration, so
 * every runtime answers with the same rules and the same bytes as Express. The request's
 * `signal` is passed on: hosts abort it when the client goes away.
 */
export function createFetchHandler(service: ServiceDefinition, ctx: Context): (request: Request, info?: FetchConnectionInfo) => Promise<Response> {
  const router = createRouter(service, ctx);
  const { maxBodyBytes } = ctx.config;
  return async (request, info) => {
    const url = new URL(request.url);
    const neutral: NeutralRequest = {
      method: request.method,
      url: `${url.pathname}${url.search}`,
      headers: headersOf(request),
      body: await readBody(request, maxBodyBytes),
      signal: request.signal,
      remoteAddress: info?.remoteAddr?.hostname,
    };
    return toResponse(neutral.method.toUpperCase(), await router.handle(neutral));
  };
}
