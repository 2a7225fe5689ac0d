import type { NeutralRequest } from '../http.ts';
import type { Router } from '../router.ts';

export interface FetchHandlerOptions {
  maxBodyBytes: number;
}

/**
 * Reads at most one byte past the limit: the router answers 413 from the length, and a huge
 * upload is never buffered whole.
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
  return size === 0 ? undefined : Buffer.concat(chunks);
}

function headersOf(request: Request): Record<string, string> {
  const headers: Record<string, string> = {};
  request.headers.forEach((value, name) => { headers[name] = value; });
  return headers;
}

/**
 * The WHATWG fetch adapter: `(Request) => Promise<Response>`, as Node 20's `fetch` types, Bun,
 * Deno and edge-style hosts use. Same router, same rules, same bytes as the Express adapter.
 */
export function createFetchHandler(router: Router, options: FetchHandlerOptions): (request: Request) => Promise<Response> {
  return async (request) => {
    const url = new URL(request.url);
    const neutral: NeutralRequest = {
      method: request.method,
      url: `${url.pathname}${url.search}`,
      headers: headersOf(request),
      body: await readBody(request, options.maxBodyBytes),
      signal: request.signal,
    };
    const response = await router.handle(neutral);
    const { body } = response;
    const bodyInit: BodyInit | null =
      body === undefined || response.status === 304 || response.status === 204
        ? null
        : typeof body === 'string'
          ? body
          : new Uint8Array(body.buffer as ArrayBuffer, body.byteOffset, body.byteLength); // a view, not a copy
    return new Response(bodyInit, { status: response.status, headers: response.headers });
  };
}
