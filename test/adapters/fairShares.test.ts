import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { createFetchHandler } from '../../lib/http/adapters/fetch.ts';
import { ContractChecker } from '../support/contract.ts';
import { apiService } from '../../functions/index.ts';
import { startTestDatabase, startTestService, type TestDatabase, type TestService } from '../support/testService.ts';
import { expressTransport, fetchTransport, h2cTransport, lambdaV1Transport, lambdaV2Transport, type Transport } from '../support/transports.ts';

/** Fair shares live in the router: every runtime refuses a caller past its limit the same way. */

let database: TestDatabase;
const services: TestService[] = [];
const closers: Array<() => Promise<void>> = [];
/** A bucket of one scanning read, refilled once in ~17 minutes: the second scan is refused. */
const env = { CALLER_RATE_PER_SECOND: '0.001', CALLER_BURST: '1' };

before(async () => {
  database = await startTestDatabase(500);
});
after(async () => {
  for (const close of closers) await close();
  for (const service of services) await service.close();
  await database?.stop();
});

async function transport(make: (ctx: TestService['ctx']) => Transport | Promise<Transport & { close(): Promise<void> }>): Promise<Transport> {
  const service = await startTestService({ database, env });
  services.push(service);
  const made = await make(service.ctx);
  if ('close' in made) closers.push(made.close);
  return made;
}

test('a caller past its rate gets the same 429, headers and problem in every runtime', async () => {
  const makers = [expressTransport, h2cTransport, fetchTransport, lambdaV2Transport, lambdaV1Transport];
  const refusals: Array<{ name: string; status: number; headers: Record<string, string | undefined>; limit: string }> = [];
  for (const make of makers) {
    const through = await transport(make);
    const contract = new ContractChecker(services.at(-1)!.router.document);
    const first = await through.send('GET', '/trips/stream?cursor=1', { headers: { 'cache-control': 'no-cache' } });
    const second = await through.send('GET', '/trips/stream?cursor=2', { headers: { 'cache-control': 'no-cache' } });
    contract.check('GET', '/trips/stream?cursor=1', first);
    contract.check('GET', '/trips/stream?cursor=2', second);
    assert.equal(first.status, 200, through.name);
    const { limit } = JSON.parse(second.text) as { limit: string };
    refusals.push({
      name: through.name,
      status: second.status,
      headers: { 'retry-after': second.headers['retry-after'], 'ratelimit-policy': second.headers['ratelimit-policy'], ratelimit: second.headers.ratelimit },
      limit,
    });
  }
  const [reference, ...others] = refusals;
  assert.equal(reference!.status, 429);
  assert.equal(reference!.limit, 'caller-rate');
  assert.ok(reference!.headers['retry-after']);
  for (const other of others) assert.deepEqual({ ...other, name: reference!.name }, reference, `${other.name} differs from ${reference!.name}`);
});

test("the fetch adapter takes the peer's address from the host (Deno.serve's info.remoteAddr)", async () => {
  const service = await startTestService({ database, env });
  services.push(service);
  const handle = createFetchHandler(apiService, service.ctx);
  const scan = (url: string, hostname: string) =>
    handle(new Request(`http://127.0.0.1${url}`, { headers: { 'cache-control': 'no-cache' } }), { remoteAddr: { hostname } });
  assert.equal((await scan('/trips/stream?cursor=3', '192.0.2.1')).status, 200);
  assert.equal((await scan('/trips/stream?cursor=4', '192.0.2.1')).status, 429);
  assert.equal((await scan('/trips/stream?cursor=4', '192.0.2.2')).status, 200, 'another address is another caller');
});
