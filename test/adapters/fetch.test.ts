import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { createFetchHandler } from '../../lib/http/adapters/fetch.ts';
import { startTestService, type TestService } from '../support/testService.ts';
import { apiService } from '../../functions/index.ts';

let service: TestService;
let handle: (request: Request) => Promise<Response>;
before(async () => {
  service = await startTestService({ rows: 100 });
  handle = createFetchHandler(apiService, service.ctx);
});
after(async () => {
  await service?.close();
});

const url = (path: string) => `http://127.0.0.1${path}`;

test('an endless upload is read only one byte past the limit, then cancelled, and answered 413', async () => {
  const limit = service.ctx.config.maxBodyBytes;
  const chunk = new Uint8Array(1024).fill(0x20);
  let produced = 0;
  let cancelled = false;
  const upload = new ReadableStream<Uint8Array>(
    {
      pull(controller) {
        // 64 MiB at most, so a broken adapter that reads everything fails the test instead of hanging it.
        if (produced >= 64 * 1024 * 1024) return controller.close();
        produced += chunk.byteLength;
        controller.enqueue(chunk);
      },
      cancel() {
        cancelled = true;
      },
    },
    { highWaterMark: 0 },
  );
  const init = { method: 'POST', headers: { 'content-type': 'application/json' }, body: upload, duplex: 'half' };
  const response = await handle(new Request(url('/trips/7/vendor'), init as RequestInit));
  assert.equal(response.status, 413);
  assert.equal((await response.json()).field, 'body');
  assert.ok(cancelled, 'the upload stream was cancelled');
  assert.ok(produced <= limit + 4 * chunk.byteLength, `read ${produced} bytes for a ${limit}-byte limit`);
});

test('bodiless answers (304, HEAD) have a null body; others keep the bytes and headers the router made', async () => {
  const first = await handle(new Request(url('/trips/5')));
  assert.equal(first.status, 200);
  const etag = first.headers.get('etag')!;
  assert.equal((await first.json()).id, 5);
  const notModified = await handle(new Request(url('/trips/5'), { headers: { 'if-none-match': etag } }));
  assert.equal(notModified.status, 304);
  assert.equal(notModified.body, null);
  assert.equal(notModified.headers.get('etag'), etag);
  const head = await handle(new Request(url('/trips/5'), { method: 'HEAD' }));
  assert.equal(head.status, 200);
  assert.equal(head.body, null);
  assert.equal(head.headers.get('content-type'), 'application/json; charset=utf-8');
});

test('repeated request headers reach the router joined, as node:http joins them', async () => {
  const headers = new Headers();
  headers.append('if-none-match', '"stale"');
  const first = await handle(new Request(url('/trips/6')));
  headers.append('if-none-match', first.headers.get('etag')!);
  const response = await handle(new Request(url('/trips/6'), { headers }));
  assert.equal(response.status, 304, 'the second entity tag of the list matched');
});

test('the host and origin of the request URL do not matter, only its path and query', async () => {
  const response = await handle(new Request('https://api.example.com/trips/pages?page=2&page_size=3'));
  assert.equal(response.status, 200);
  assert.equal((await response.json()).pagination.page, 2);
});
