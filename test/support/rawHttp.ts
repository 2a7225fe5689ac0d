import { connect } from 'node:net';

export interface RawResponse {
  /** 0 when the server closed the connection without answering. */
  status: number;
  /** Lower-case names; repeated headers joined with ", ". */
  headers: Record<string, string>;
  body: string;
  ms: number;
  /** No answer (or no end of it) within the timeout: the connection was closed by us. */
  timedOut?: boolean;
}

/**
 * Sends exact bytes (anything: bad request lines, NUL bytes, lying lengths) on a fresh loopback
 * connection and reads until the server closes it (requests should say `Connection: close`), or
 * gives up after `timeoutMs` and says so.
 */
export function sendRaw(port: number, bytes: Buffer | string, timeoutMs = 10_000): Promise<RawResponse> {
  const started = performance.now();
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    let timedOut = false;
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      timedOut = true;
      socket.destroy();
    }, timeoutMs);
    socket.on('data', (chunk) => chunks.push(chunk));
    socket.on('error', () => undefined); // a reset after the answer is normal for a refused request
    socket.on('close', () => {
      clearTimeout(timer);
      resolve({ ...parseResponse(Buffer.concat(chunks), performance.now() - started), timedOut });
    });
    socket.write(bytes);
  });
}

function parseResponse(raw: Buffer, ms: number): RawResponse {
  let text = raw.toString('utf8');
  // Interim answers (100 Continue) come before the real one.
  while (/^HTTP\/1\.1 1\d\d /.test(text) && text.includes('\r\n\r\n')) text = text.slice(text.indexOf('\r\n\r\n') + 4);
  const headEnd = text.indexOf('\r\n\r\n');
  if (!text.startsWith('HTTP/1.1 ') || headEnd === -1) return { status: 0, headers: {}, body: text, ms };
  const [statusLine, ...lines] = text.slice(0, headEnd).split('\r\n');
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`;
  }
  let body = text.slice(headEnd + 4);
  if (headers['transfer-encoding']?.includes('chunked')) body = dechunk(body);
  return { status: Number(statusLine!.split(' ')[1]), headers, body, ms };
}

function dechunk(body: string): string {
  let out = '';
  let rest = body;
  for (;;) {
    const lineEnd = rest.indexOf('\r\n');
    const size = parseInt(rest.slice(0, lineEnd), 16);
    if (!size) return out;
    out += rest.slice(lineEnd + 2, lineEnd + 2 + size);
    rest = rest.slice(lineEnd + 2 + size + 2);
  }
}

/** A request as bytes: the request line, headers (Host and Connection: close added), optional body. */
export function rawRequest(method: string, target: string, headers: Record<string, string> = {}, body?: Buffer | string): Buffer {
  const all: Record<string, string> = { host: 'api.test', connection: 'close', ...headers };
  if (body !== undefined && all['content-length'] === undefined && all['transfer-encoding'] === undefined) {
    all['content-length'] = String(Buffer.byteLength(body));
  }
  const head = `${method} ${target} HTTP/1.1\r\n${Object.entries(all)
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('')}\r\n`;
  return Buffer.concat([Buffer.from(head, 'utf8'), body === undefined ? Buffer.alloc(0) : Buffer.isBuffer(body) ? body : Buffer.from(body, 'utf8')]);
}
