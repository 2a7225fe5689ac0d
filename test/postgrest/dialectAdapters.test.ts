import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startTestService, type TestService } from '../support/testService.ts';
import { type Exchange, expressTransport, fetchTransport, h2cTransport, lambdaV1Transport, lambdaV2Transport, type Transport } from '../support/transports.ts';

/**
 * /rides in PostgREST's dialect through every runtime adapter: the headers that shape the answer
 * (Accept, Prefer, Range) reach the handler, and Content-Range, the media type, 206/406/416 and the
 * problem body with PostgREST's code come back the same from Express, fetch, Lambda v2 and v1 and h2c.
 */
let service: TestService;
let transports: Transport[];
let closeH2c: () => Promise<void>;

before(async () => {
  service = await startTestService({ rows: 300 });
  const h2c = await h2cTransport(service.ctx);
  closeH2c = h2c.close;
  transports = [...[expressTransport, fetchTransport, lambdaV2Transport, lambdaV1Transport].map((make) => make(service.ctx)), h2c];
});
after(async () => {
  await closeH2c?.();
  await service?.close();
});

const cases: Array<{ method?: string; url: string; headers?: Record<string, string>; status: number; check?: (exchange: Exchange) => void }> = [
  {
    url: '/rides?select=id,trip_duration&id=lte.5&order=id.desc',
    status: 200,
    check: (e) =>
      assert.deepEqual(
        (JSON.parse(e.text) as Array<{ id: number }>).map((r) => r.id),
        [5, 4, 3, 2, 1],
      ),
  },
  {
    url: '/rides?select=id&order=id',
    headers: { prefer: 'count=exact', range: '10-19' },
    status: 206,
    check: (e) => assert.equal(e.headers['content-range'], '10-19/300'),
  },
  {
    url: '/rides?select=id&id=eq.7',
    headers: { accept: 'application/vnd.pgrst.object+json' },
    status: 200,
    check: (e) => assert.deepEqual(JSON.parse(e.text), { id: 7 }),
  },
  {
    url: '/rides?select=id&id=gt.7',
    headers: { accept: 'application/vnd.pgrst.object+json' },
    status: 406,
    check: (e) => assert.equal(JSON.parse(e.text).code, 'PGRST116'),
  },
  {
    url: '/rides?select=id,vendor_id&id=in.(1,2)',
    headers: { accept: 'text/csv' },
    status: 200,
    check: (e) => assert.match(e.text, /^id,vendor_id\n1,\d\n2,\d\n$/),
  },
  { url: '/rides?offset=500', headers: { prefer: 'count=exact' }, status: 416, check: (e) => assert.equal(JSON.parse(e.text).code, 'PGRST103') },
  { url: '/rides?or=(id.eq.1', status: 400, check: (e) => assert.equal(JSON.parse(e.text).code, 'PGRST100') },
  { method: 'HEAD', url: '/rides?id=lte.10', headers: { prefer: 'count=exact' }, status: 200, check: (e) => assert.equal(e.text, '') },
];

test('every adapter passes the dialect its headers and answers alike', async () => {
  for (const { method = 'GET', url, headers, status, check } of cases) {
    const answers: Array<{ via: string; status: number; range?: string; type?: string; text: string }> = [];
    for (const transport of transports) {
      const exchange = await transport.send(method, url, { headers });
      assert.equal(exchange.status, status, `${transport.name} ${method} ${url}: ${exchange.text}`);
      service.contract.check(method, url, exchange);
      check?.(exchange);
      const body = exchange.text.startsWith('{') ? JSON.parse(exchange.text) : exchange.text;
      if (typeof body === 'object') delete body.request_id;
      answers.push({
        via: transport.name,
        status: exchange.status,
        range: exchange.headers['content-range'],
        type: exchange.headers['content-type'],
        text: JSON.stringify(body),
      });
    }
    for (const other of answers.slice(1))
      assert.deepEqual({ ...other, via: '' }, { ...answers[0]!, via: '' }, `${other.via} differs from ${answers[0]!.via} for ${url}`);
  }
});
