import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { type StatementMessage, statementChannel } from '../../lib/db/databaseChannels.ts';
import { keyOfSingleRead } from '../../lib/postgrest/keyRead.ts';
import { parseQuery } from '../../lib/postgrest/parseQuery.ts';
import { RIDE_DIALECT } from '../../functions/rideDialect.ts';
import { startTestService, type TestService } from '../support/testService.ts';

/**
 * postgrest-js' `.eq('id', N).single()` on /rides is answered by the item route's batched lookup:
 * the same bytes as the general statement and as /rides/{id}, concurrent ones in shared statements,
 * and only when the query is exactly that question.
 */
let service: TestService;
const OBJECT = { accept: 'application/vnd.pgrst.object+json' };

before(async () => {
  // The cache off: every request reaches the database, and the statements can be counted.
  service = await startTestService({ rows: 300, env: { CACHE_ENABLED: 'false' } });
});
after(async () => {
  await service?.close();
});

/** Runs `work` and returns the names of the statements it ran (lib/db/databaseChannels.ts). */
async function statementsDuring(work: () => Promise<unknown>): Promise<string[]> {
  const names: string[] = [];
  const start = (message: unknown) => names.push((message as StatementMessage).name);
  const handlers = { start, end: () => undefined, asyncStart: () => undefined, asyncEnd: () => undefined, error: () => undefined };
  statementChannel.subscribe(handlers);
  try {
    await work();
  } finally {
    statementChannel.unsubscribe(handlers);
  }
  return names;
}

test('which queries the lookup by key answers', () => {
  const key = (search: string, headers: Record<string, string> = OBJECT) => keyOfSingleRead(RIDE_DIALECT, parseQuery(search, headers));
  assert.deepEqual(key('id=eq.7'), ['7']);
  assert.deepEqual(key('id=eq.7&select=*'), ['7']);
  assert.equal(key('id=eq.7', {}), undefined, 'an array answer');
  assert.equal(key('id=eq.7&select=id'), undefined, 'another select');
  assert.equal(key('id=eq.7&vendor_id=eq.1'), undefined, 'another filter');
  assert.equal(key('id=neq.7'), undefined);
  assert.equal(key('id=not.eq.7'), undefined);
  assert.equal(key('id=eq.abc'), undefined, 'a value Postgres would refuse never joins a batch');
  assert.equal(key('id=eq.9223372036854775808'), undefined, 'past bigint');
  assert.equal(key('id=eq.7&offset=1'), undefined);
  assert.equal(key('id=eq.7', { ...OBJECT, prefer: 'count=exact' }), undefined);
  assert.equal(key('id=eq.7', { accept: 'application/vnd.pgrst.object+json;nulls=stripped' }), undefined);
});

test('single() by the key answers what /rides/{id} and the general statement answer', async () => {
  const byKey = await service.api.get('/rides?id=eq.7', { headers: OBJECT });
  assert.equal(byKey.status, 200);
  assert.equal(byKey.headers['content-type'], 'application/vnd.pgrst.object+json; charset=utf-8');
  assert.equal(byKey.headers['content-range'], '0-0/*');
  const item = await service.api.get('/rides/7');
  assert.deepEqual(byKey.body, item.body);
  // The general statement (an in= filter takes it) gives the same row, byte for byte.
  const general = await service.api.get('/rides?id=in.(7)', { headers: OBJECT });
  assert.deepEqual(byKey.body, general.body);
  assert.equal(byKey.text, general.text);

  const missing = await service.api.get('/rides?id=eq.100000', { headers: OBJECT });
  assert.equal(missing.status, 406);
  assert.equal(missing.body.code, 'PGRST116');
  assert.equal(missing.body.details, 'The result contains 0 rows');
  const refused = await service.api.get('/rides?id=eq.abc', { headers: OBJECT });
  assert.equal(refused.status, 400);
  assert.equal(refused.body.code, '22P02');
});

test('concurrent single() reads share statements', async () => {
  const ids = Array.from({ length: 40 }, (_, i) => i + 1);
  let answers: Array<{ id: number }> = [];
  const names = await statementsDuring(async () => {
    // Straight into the router, all at once: more lookups than statements may run together.
    const responses = await Promise.all(ids.map((id) => service.router.handle({ method: 'GET', url: `/rides?id=eq.${id}`, headers: OBJECT })));
    answers = responses.map((r) => JSON.parse(String(r.body)) as { id: number });
  });
  assert.deepEqual(
    answers.map((a) => a.id),
    ids,
  );
  const lookups = names.filter((name) => name === 'pgrst_key_rides');
  assert.ok(lookups.length > 0, `the lookup by key ran: ${names.join(', ')}`);
  assert.ok(lookups.length < ids.length, `${lookups.length} statements for ${ids.length} concurrent reads`);
  assert.equal(names.length, lookups.length, 'no other statement ran');
});
