import { constants, type IncomingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import { type NeutralRequest, StreamedBody } from '../../ground/neutralRequest.ts';
import type { Router } from '../router.ts';
import { sendStreamed } from './nodeMessages.ts';

/**
 * HTTP/2 streams (h2c, as the Databricks Apps proxy may speak) straight into the shared router,
 * without Express: Express 5 is built on HTTP/1 request/response objects, while a stream is
 * already all the router needs. Same rules, same responses as every other adapter.
 */
export type Http2StreamHandler = (stream: ServerHttp2Stream, headers: IncomingHttpHeaders) => void;

/**
 * An oversized upload is drained (so the client reads its 413) up to this many further bytes, then
 * reset with NO_ERROR as RFC 9113 §8.1 allows. Some clients (curl 7.88) drop the response on such
 * a reset, so it is kept for uploads far beyond any body this API accepts.
 */
const DRAIN_LIMIT_BYTES = 1024 * 1024;

/** Headers forbidden in HTTP/2 (RFC 9113 §8.2.2); the router never sets them, but be sure. */
const CONNECTION_SPECIFIC = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade']);

/**
 * Reads the body up to one byte past the limit, as the Express adapter does; the router answers
 * 413. A body declared larger than the limit is not read at all (the router answers from
 * Content-Length), so a client cannot hold the stream open by declaring much and sending little.
 */
function readBody(stream: ServerHttp2Stream, declared: string | undefined, limit: number): Promise<{ body: Buffer | undefined; complete: boolean }> {
  if (stream.readableEnded) return Promise.resolve({ body: undefined, complete: true });
  if (Number(declared) > limit) return Promise.resolve({ body: undefined, complete: false });
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const finish = (complete: boolean) => {
      stream.off('data', onData);
      stream.off('end', onEnd);
      stream.off('error', reject);
      resolve({ body: size === 0 ? undefined : Buffer.concat(chunks), complete });
    };
    const onData = (chunk: Buffer) => {
      chunks.push(chunk);
      size += chunk.length;
      // Past the limit, stop keeping chunks but let them drain: a paused stream would stall the session.
      if (size > limit) finish(false);
    };
    const onEnd = () => finish(true);
    stream.on('data', onData);
    stream.once('end', onEnd);
    stream.once('error', reject);
  });
}

export function createHttp2StreamHandler(router: Router, options: { maxBodyBytes: number }): Http2StreamHandler {
  return (stream, incoming) => {
    // A reset from the client is routine; without a listener it would be an uncaught error.
    stream.on('error', () => undefined);
    void (async () => {
      const abort = new AbortController();
      stream.once('close', () => abort.abort());
      const headers: Record<string, string | string[] | undefined> = {};
      for (const [name, value] of Object.entries(incoming)) if (!name.startsWith(':')) headers[name] = value;
      headers.host ??= incoming[':authority'];

      let read: { body: Buffer | undefined; complete: boolean };
      try {
        read = await readBody(stream, incoming['content-length'], options.maxBodyBytes);
      } catch {
        stream.destroy();
        return;
      }
      const neutral: NeutralRequest = {
        method: String(incoming[':method'] ?? 'GET'),
        url: String(incoming[':path'] ?? '/'),
        headers,
        body: read.body,
        remoteAddress: stream.session?.socket?.remoteAddress,
        signal: abort.signal,
      };
      const response = await router.handle(neutral);
      if (stream.destroyed || stream.closed || stream.headersSent) {
        if (response.body instanceof StreamedBody) await response.body.cancel();
        return;
      }
      const outgoing: Record<string, string | number> = { [constants.HTTP2_HEADER_STATUS]: response.status };
      for (const [name, value] of Object.entries(response.headers)) if (!CONNECTION_SPECIFIC.has(name)) outgoing[name] = value;
      const bodyless = response.body === undefined || response.status === 204 || response.status === 304;
      stream.respond(outgoing, { endStream: bodyless });
      if (response.body instanceof StreamedBody) {
        if (bodyless) await response.body.cancel();
        else void sendStreamed(response.body, stream);
      } else if (!bodyless) stream.end(response.body);
      if (!read.complete) {
        let drained = 0;
        stream.on('data', (chunk: Buffer) => {
          drained += chunk.length;
          if (drained > DRAIN_LIMIT_BYTES && !stream.closed) stream.close(constants.NGHTTP2_NO_ERROR);
        });
      }
    })();
  };
}
