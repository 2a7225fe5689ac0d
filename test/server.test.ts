import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import http from 'node:http';
import http2 from 'node:http2';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { APP_VERSION } from '../lib/version.ts';

/**
 * `npm start` as a newcomer runs it: server.ts with no database settings starts the embedded
 * PostgreSQL, seeds it once, serves, and shuts down cleanly on SIGTERM.
 */
const dataDir = mkdtempSync(join(tmpdir(), 'lakebase-api-server-'));
after(() => rmSync(dataDir, { recursive: true, force: true }));
const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
// Absolute, so the server can also run from another working directory.
const tsxLoader = pathToFileURL(join(root, 'node_modules/tsx/dist/loader.mjs')).href;

interface Running {
  child: ChildProcess;
  port: number;
  lines: string[];
  /** What the process wrote to stderr. */
  errors: string[];
  exited: Promise<number | null>;
}

async function startServer(extraEnv: Record<string, string> = {}, cwd = root): Promise<Running> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    // A clean environment: no database or Databricks settings leak in from the machine.
    if (v !== undefined && !/^(PG|DATABASE_URL|DATABRICKS_|LAKEBASE_|DB_|DEFAULT_POSTGRES)/.test(k)) env[k] = v;
  }
  const child = spawn(process.execPath, ['--import', tsxLoader, join(root, 'server.ts')], {
    cwd,
    env: { ...env, PORT: '0', SAMPLE_ROWS: '3000', EMBEDDED_PG_DATA_DIR: dataDir, LOG_LEVEL: 'info', NODE_ENV: 'production', ...extraEnv },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  const errors: string[] = [];
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const port = await new Promise<number>((resolve, reject) => {
    const deadline = setTimeout(() => reject(new Error(`server did not start:\n${lines.join('\n')}`)), 90_000);
    let buffer = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      buffer += chunk.toString();
      for (let newline = buffer.indexOf('\n'); newline >= 0; newline = buffer.indexOf('\n')) {
        const line = buffer.slice(0, newline);
        buffer = buffer.slice(newline + 1);
        lines.push(line);
        const started = /Application startup complete: listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(line);
        if (started) {
          clearTimeout(deadline);
          resolve(Number(started[1]));
        }
      }
    });
    child.stderr!.on('data', (chunk: Buffer) => {
      lines.push(chunk.toString());
      errors.push(chunk.toString());
    });
    void exited.then((code) => {
      clearTimeout(deadline);
      reject(new Error(`server exited with ${code}:\n${lines.join('\n')}`));
    });
  });
  return { child, port, lines, errors, exited };
}

test('starts on the embedded database, serves the API and the docs, and stops on SIGTERM', async () => {
  const first = await startServer();
  try {
    const count = await fetch(`http://127.0.0.1:${first.port}/trips/count`);
    assert.equal(count.status, 200);
    assert.deepEqual(await count.json(), { total_trips: 3000 });
    const docs = await fetch(`http://127.0.0.1:${first.port}/docs/`);
    assert.equal(docs.status, 200);
    assert.match(await docs.text(), /swagger-ui/);
    assert.ok(
      first.lines.some((l) => l.includes('Seeding')),
      'the first start seeds',
    );
    for (const line of first.lines.filter((l) => l.startsWith('{'))) assert.doesNotThrow(() => JSON.parse(line), 'logs are JSON lines');
    // Start-up says what it connected to (no secrets) before it says it is ready to serve.
    const records = first.lines.filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
    const connected = records.findIndex((r) => r.mode === 'embedded');
    assert.ok(connected >= 0, 'a start-up line names the mode');
    assert.deepEqual(
      { host: records[connected]!.host, database: records[connected]!.database, pool: records[connected]!.pool, version: records[connected]!.version },
      { host: '127.0.0.1', database: 'lakebase_api', pool: { size: 5, max: 15 }, version: APP_VERSION },
    );
    assert.ok(records.findIndex((r) => String(r.msg).startsWith('Application startup complete')) > connected);
    const ready = await fetch(`http://127.0.0.1:${first.port}/health/ready`);
    assert.equal(ready.status, 200);
  } finally {
    // A request the server has received (100 Continue) but not answered when SIGTERM arrives.
    const inFlight = h1RequestInFlight(first.port, '/trips/10/vendor');
    await inFlight.received;
    first.child.kill('SIGTERM');
    const stopped = Date.now();
    const response = await inFlight.finish().catch(() => undefined);
    assert.equal(response?.status, 200, 'the in-flight request finishes');
    assert.equal(await first.exited, 0);
    assert.ok(Date.now() - stopped < 15_000);
  }
  const step = (text: string) => first.lines.findIndex((l) => l.includes(text));
  const steps = ['Shutting down: readiness now answers 503', 'In-flight requests finished', 'Database pool closed', 'Shutdown complete'].map(step);
  assert.ok(
    steps.every((i) => i >= 0),
    `every shutdown step is logged: ${steps}`,
  );
  assert.deepEqual(
    [...steps].sort((a, b) => a - b),
    steps,
    'readiness 503, then in-flight requests, then the pool',
  );
  for (const line of first.lines) assert.ok(!line.includes('embedded-local-only'), `no password in the log: ${line}`);
});

test('a second start reuses the seeded data and starts in a few seconds', async () => {
  const started = Date.now();
  const second = await startServer();
  const startupMs = Date.now() - started;
  try {
    assert.ok(!second.lines.some((l) => l.includes('Seeding')), 'no re-seeding');
    assert.ok(startupMs < 15_000, `started in ${startupMs} ms`);
    const res = await fetch(`http://127.0.0.1:${second.port}/trips/count`);
    assert.deepEqual(await res.json(), { total_trips: 3000 });
  } finally {
    second.child.kill('SIGTERM');
    assert.equal(await second.exited, 0);
  }
});

function h2Get(session: http2.ClientHttp2Session, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolvePromise, reject) => {
    const stream = session.request({ ':path': path });
    let status = 0;
    let body = '';
    stream.setEncoding('utf8');
    stream.on('response', (h) => {
      status = Number(h[':status']);
    });
    stream.on('data', (chunk: string) => {
      body += chunk;
    });
    stream.once('error', reject);
    stream.once('end', () => resolvePromise({ status, body }));
  });
}

interface InFlight {
  /** Resolves once the server is known to have the request (so it is really in flight). */
  received: Promise<void>;
  /** Sends the rest of the request; resolves with the response. */
  finish(): Promise<{ status: number; connection?: string }>;
}

const VENDOR_BODY = JSON.stringify({ vendor_id: '2' });

/**
 * An HTTP/1.1 request the server has certainly received: `Expect: 100-continue` makes it answer
 * `100 Continue` once it has parsed the headers; the body follows only when told.
 */
function h1RequestInFlight(port: number, path: string): InFlight {
  const req = http.request({
    port,
    host: '127.0.0.1',
    method: 'POST',
    path,
    headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(VENDOR_BODY), expect: '100-continue' },
  });
  const response = new Promise<{ status: number; connection?: string }>((resolvePromise, reject) => {
    req.once('response', (res) => {
      res.resume();
      res.once('end', () => resolvePromise({ status: res.statusCode ?? 0, connection: res.headers.connection }));
    });
    req.once('error', reject);
  });
  const received = new Promise<void>((resolvePromise) => req.once('continue', () => resolvePromise()));
  req.flushHeaders();
  return {
    received,
    finish: () => {
      req.end(VENDOR_BODY);
      return response;
    },
  };
}

/**
 * An h2c stream the server has certainly received: a PING sent after its HEADERS frame is
 * acknowledged only after the server processed the frames before it.
 */
function h2RequestInFlight(session: http2.ClientHttp2Session, path: string): InFlight {
  const stream = session.request({ ':method': 'POST', ':path': path, 'content-type': 'application/json' }, { endStream: false });
  const response = new Promise<{ status: number }>((resolvePromise, reject) => {
    let status = 0;
    stream.on('response', (h) => {
      status = Number(h[':status']);
    });
    stream.resume();
    stream.once('error', reject);
    stream.once('end', () => resolvePromise({ status }));
  });
  const received = new Promise<void>((resolvePromise, reject) => session.ping((err) => (err ? reject(err) : resolvePromise())));
  return {
    received,
    finish: () => {
      stream.end(VENDOR_BODY);
      return response;
    },
  };
}

test('HTTP/1.1 and h2c on one port; SIGTERM finishes in-flight requests on both; logs only on stdout', async () => {
  // A fresh, empty working directory: afterwards it must still be empty (no log files).
  const cwd = mkdtempSync(join(tmpdir(), 'lakebase-api-cwd-'));
  chmodSync(cwd, 0o755);
  const server = await startServer({}, cwd);
  let session: http2.ClientHttp2Session | undefined;
  try {
    session = http2.connect(`http://127.0.0.1:${server.port}`);
    const overH2 = await h2Get(session, '/trips/count');
    assert.equal(overH2.status, 200);
    assert.deepEqual(JSON.parse(overH2.body), { total_trips: 3000 });
    const overH1 = await fetch(`http://127.0.0.1:${server.port}/trips/count`);
    assert.deepEqual(await overH1.json(), { total_trips: 3000 });
  } finally {
    // Requests the server has received but not answered when SIGTERM arrives.
    const h1 = h1RequestInFlight(server.port, '/trips/11/vendor');
    const h2 = session ? h2RequestInFlight(session, '/trips/12/vendor') : undefined;
    await Promise.all([h1.received, h2?.received]);
    server.child.kill('SIGTERM');
    const stopped = Date.now();
    // Only once the server has begun shutting down do the requests' bodies follow.
    while (!server.lines.some((l) => l.includes('Shutting down'))) {
      assert.ok(Date.now() - stopped < 10_000, 'the server logs that it is shutting down');
      await new Promise((r) => setTimeout(r, 20));
    }
    const [r1, r2] = await Promise.all([h1.finish(), h2?.finish()]);
    assert.equal(r1.status, 200, 'the in-flight HTTP/1.1 request finishes');
    assert.equal(r1.connection, 'close', 'and the client is told the connection ends');
    assert.equal(r2?.status, 200, 'the in-flight h2c request finishes');
    assert.equal(await server.exited, 0);
    assert.ok(Date.now() - stopped < 15_000, 'exits within 15 s of SIGTERM');
    session?.destroy();
  }
  assert.deepEqual(readdirSync(cwd), [], 'nothing written to the working directory');
  rmSync(cwd, { recursive: true, force: true });
  assert.deepEqual(server.errors, [], 'nothing on stderr in a clean run');
  const stdout = server.lines.filter((l) => l.trim() !== '');
  for (const line of stdout) assert.doesNotThrow(() => JSON.parse(line), `stdout carries JSON log lines only: ${line}`);
  assert.ok(stdout.some((l) => l.includes('Shutdown complete')));
});

test('a bad setting stops start-up with one clear message naming the variable', async () => {
  const child = spawn(process.execPath, ['--import', 'tsx', 'server.ts'], { env: { ...process.env, DB_POOL_SIZE: 'lots' }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => {
    stderr += c.toString();
  });
  const code = await new Promise((resolve) => child.once('exit', resolve));
  assert.equal(code, 1);
  assert.match(stderr, /Start-up failed: Invalid configuration: DB_POOL_SIZE must be an integer/);
});
