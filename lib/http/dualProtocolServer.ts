import type { Server, ServerResponse } from 'node:http';
import http2, { type Http2Session } from 'node:http2';
import type { Socket } from 'node:net';
import type { Http2StreamHandler } from './adapters/http2.ts';

/**
 * HTTP/1.1 and HTTP/2 cleartext (h2c, "prior knowledge") on one port.
 *
 * Databricks Apps requires h2c support behind its proxy. Node cannot do this by itself: on a
 * cleartext `http2.createServer({ allowHTTP1: true })` an HTTP/1.1 client fails
 * (HPE_INVALID_CONSTANT, checked on Node 22.16 and 24), because the HTTP/1 fallback only exists for
 * TLS, where ALPN picks the protocol. So each new connection's first bytes are read: the HTTP/2
 * connection preface (`PRI * HTTP/2.0…`, RFC 9113 §3.4) hands the socket to an HTTP/2 server,
 * anything else to the HTTP/1 server's own connection handling, with the bytes put back first.
 * `Upgrade: h2c` (the RFC 7540 upgrade dance) is not supported by Node and is answered over
 * HTTP/1.1, which the RFC allows.
 *
 * `acceptH2c` adds this to an existing http.Server (lib/http/httpServer.ts's), which keeps listening
 * itself, so its options, timeouts, connection tracking and events (`clientError`, `request`)
 * apply unchanged; only its 'connection' listener is wrapped. Its close methods are extended to
 * cover both protocols, so code written for a plain http.Server (lib/ops/gracefulShutdown.ts)
 * shuts it down correctly:
 * - `close()` also sends GOAWAY to every HTTP/2 session (open streams finish, no new ones start),
 *   marks in-flight HTTP/1 responses `Connection: close` (a keep-alive socket would otherwise
 *   linger until the client drops it), and drops connections that have not sent a byte yet; its
 *   callback runs once every connection of either protocol has ended;
 * - `closeAllConnections()` also destroys the HTTP/2 sessions.
 */
const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
/** A connection that sends nothing decisive for this long is closed (Node's default headersTimeout). */
const SNIFF_TIMEOUT_MS = 60_000;

export interface H2cOptions {
  /** Largest header list an HTTP/2 client may send (SETTINGS_MAX_HEADER_LIST_SIZE), like HTTP/1's maxHeaderSize. */
  maxHeaderBytes?: number;
}

export function acceptH2c<S extends Server>(server: S, handler: Http2StreamHandler, options: H2cOptions = {}): S {
  const h2 = http2.createServer(options.maxHeaderBytes ? { settings: { maxHeaderListSize: options.maxHeaderBytes } } : {});
  const sniffing = new Set<Socket>();
  const sessions = new Set<Http2Session>();
  /** Open HTTP/1 connections, and the response each is answering (or last answered). */
  const http1Sockets = new Set<Socket>();
  const currentResponse = new WeakMap<Socket, ServerResponse>();
  let closing = false;

  h2.on('stream', handler);
  h2.on('session', (session) => {
    sessions.add(session);
    session.once('close', () => sessions.delete(session));
    if (closing) session.close();
  });

  const listeners = server.listeners('connection');
  if (listeners.length !== 1) throw new Error(`Expected one HTTP/1 connection listener, found ${listeners.length}`);
  const http1Connection = listeners[0] as (socket: Socket) => void;
  server.removeListener('connection', http1Connection);

  server.on('connection', (socket: Socket) => {
    sniffing.add(socket);
    let buffered: Buffer = Buffer.alloc(0);
    const timer = setTimeout(() => socket.destroy(), SNIFF_TIMEOUT_MS);
    timer.unref();
    const onError = () => socket.destroy(); // e.g. ECONNRESET before the first request
    const done = () => {
      clearTimeout(timer);
      sniffing.delete(socket);
      socket.off('data', onData);
      socket.off('error', onError);
      socket.off('close', done);
    };
    const onData = (chunk: Buffer) => {
      buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk]);
      const compared = Math.min(buffered.length, PREFACE.length);
      const isPreface = buffered.subarray(0, compared).equals(PREFACE.subarray(0, compared));
      if (isPreface && buffered.length < PREFACE.length) return; // need more bytes to decide
      done();
      socket.pause();
      socket.unshift(buffered);
      if (isPreface) {
        // The HTTP/2 session takes the bytes already buffered on the socket itself.
        h2.emit('connection', socket);
      } else {
        http1Sockets.add(socket);
        socket.once('close', () => http1Sockets.delete(socket));
        http1Connection.call(server, socket);
        socket.resume();
      }
    };
    socket.on('data', onData);
    socket.on('error', onError);
    socket.once('close', done);
  });

  server.prependListener('request', (_req, res: ServerResponse) => {
    // Per request only a WeakMap entry, no listener: a listener per response measurably slowed
    // every request. A finished response has headersSent, so a stale entry is never touched.
    currentResponse.set(res.socket as Socket, res);
    if (closing) res.setHeader('connection', 'close');
  });

  const close = server.close.bind(server);
  server.close = (callback?: (err?: Error) => void) => {
    closing = true;
    for (const socket of sniffing) socket.destroy();
    for (const socket of http1Sockets) {
      const res = currentResponse.get(socket);
      if (res && !res.headersSent) res.setHeader('connection', 'close');
    }
    for (const session of sessions) session.close();
    return close(callback);
  };
  const closeAllConnections = server.closeAllConnections.bind(server);
  server.closeAllConnections = () => {
    closeAllConnections();
    for (const session of sessions) session.destroy();
    for (const socket of sniffing) socket.destroy();
  };
  return server;
}
