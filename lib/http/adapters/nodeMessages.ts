import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { type NeutralRequest, type NeutralResponse, StreamedBody } from '../../ground/neutralRequest.ts';

/**
 * Reads the body up to one byte past the limit: the router answers 413 from the length, and a
 * huge upload is never buffered whole. A body declared larger than the limit is not read at all
 * (the router answers 413 from Content-Length): waiting for it would let a client that declares
 * much and sends little hold the request open.
 */
export function readBody(req: IncomingMessage, limit: number): Promise<Buffer | undefined> {
  const declared = req.headers['content-length'];
  if (!req.headers['transfer-encoding'] && (declared === undefined || declared === '0')) return Promise.resolve(undefined);
  if (Number(declared) > limit) return Promise.resolve(undefined);
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      chunks.push(chunk);
      size += chunk.length;
      if (size > limit) finish();
    };
    const finish = () => {
      req.off('data', onData);
      req.off('end', finish);
      req.off('error', reject);
      resolve(Buffer.concat(chunks));
    };
    req.on('data', onData);
    req.once('end', finish);
    req.once('error', reject);
  });
}

/** An upload over the limit (read or only declared) is answered 413 and its connection closed, not drained. */
export function uploadTooLarge(req: IncomingMessage, body: Buffer | undefined, limit: number): boolean {
  return (body !== undefined && body.length > limit) || Number(req.headers['content-length']) > limit;
}

/**
 * A node:http request in the neutral shape. Its abort signal (the client went away) is made
 * only when something asks for it: an AbortController and a 'close' listener per request are a
 * measurable share of a cache hit, and most requests never look.
 */
export class NodeNeutralRequest implements NeutralRequest {
  readonly headers: IncomingHttpHeaders;
  #abort: AbortController | undefined;

  constructor(
    readonly method: string,
    readonly url: string,
    private readonly req: IncomingMessage,
    readonly body: Buffer | undefined,
    private readonly res: ServerResponse,
  ) {
    this.headers = req.headers;
  }

  get remoteAddress(): string | undefined {
    return this.req.socket.remoteAddress;
  }

  get signal(): AbortSignal {
    if (!this.#abort) {
      const abort = new AbortController();
      this.#abort = abort;
      const { res } = this;
      if (res.destroyed) {
        if (!res.writableFinished) abort.abort(); // the client left before anyone asked
      } else {
        res.once('close', () => {
          if (!res.writableFinished) abort.abort();
        });
      }
    }
    return this.#abort.signal;
  }
}

/**
 * Writes a neutral response in one `writeHead`: one header object handed over at once, rather
 * than a validated `setHeader` call per header. The length is set here because `writeHead`
 * commits the headers before `end` could compute it (it would fall back to chunked encoding).
 */
export function writeResponse(res: ServerResponse, response: NeutralResponse, closeConnection = false): void {
  const { headers, body } = response;
  if (body instanceof StreamedBody) {
    if (closeConnection) headers.connection = 'close';
    res.writeHead(response.status, headers);
    void sendStreamed(body, res);
    return;
  }
  if (body !== undefined && headers['content-length'] === undefined) {
    headers['content-length'] = String(typeof body === 'string' ? Buffer.byteLength(body) : body.length);
  }
  if (closeConnection) headers.connection = 'close';
  res.writeHead(response.status, headers);
  res.end(body);
}

/**
 * A streamed body, chunk by chunk (chunked encoding), at the pace the client reads: pipeline
 * waits for 'drain', and a client that goes away ends the producer (its cursor and transaction)
 * through the iterator's return. A producer that fails mid-way can no longer change the status:
 * the response is cut short, which a client sees as an incomplete chunked body.
 */
export async function sendStreamed(body: StreamedBody, destination: NodeJS.WritableStream): Promise<void> {
  try {
    await pipeline(Readable.from(body, { objectMode: false }), destination);
  } catch {
    await body.cancel().catch(() => undefined);
  }
}
