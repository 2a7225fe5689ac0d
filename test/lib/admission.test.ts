import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { CallerLimits } from '../../lib/admission/callerLimits.ts';
import { clientAddress, trustedProxies } from '../../lib/admission/clientAddress.ts';
import { FairQueue } from '../../lib/admission/fairQueue.ts';
import { loadConfig } from '../../lib/ground/config.ts';
import { ResultsCache } from '../../lib/cache/resultsCache.ts';
import { FairSlots } from '../../lib/db/fairSlots.ts';
import { ACTIVE_CALLER_MS, ScanShare } from '../../lib/db/scanShare.ts';
import { StatementCosts } from '../../lib/db/statementCosts.ts';
import { Overloaded, TooManyRequests } from '../../lib/errors.ts';

describe('the client address', () => {
  const proxies = trustedProxies(['10.0.0.0/8', '::1']);

  test('is the peer unless the peer is a trusted proxy', () => {
    assert.equal(clientAddress('203.0.113.5', '198.51.100.1', proxies), '203.0.113.5', 'an untrusted peer cannot name someone else');
    assert.equal(clientAddress('::ffff:203.0.113.5', undefined, proxies), '203.0.113.5');
    assert.equal(clientAddress(undefined, '198.51.100.1', proxies), undefined);
  });

  test('X-Forwarded-For is read from the right, skipping only trusted proxies', () => {
    assert.equal(clientAddress('10.0.0.2', '198.51.100.1', proxies), '198.51.100.1');
    assert.equal(clientAddress('10.0.0.2', '6.6.6.6, 198.51.100.1, 10.0.0.9', proxies), '198.51.100.1', 'a forged left-most entry is ignored');
    assert.equal(clientAddress('::1', '10.0.0.3, 10.0.0.4', proxies), '10.0.0.3', 'all trusted: the left-most');
    assert.equal(clientAddress('10.0.0.2', 'garbage, 10.0.0.5', proxies), '10.0.0.5', 'stops at a malformed entry');
  });

  test('TRUSTED_PROXIES is checked at start-up', () => {
    assert.deepEqual(loadConfig({ TRUSTED_PROXIES: '10.0.0.0/8, ::1' }).admission.trustedProxies, ['10.0.0.0/8', '::1']);
    assert.throws(() => loadConfig({ TRUSTED_PROXIES: 'proxy.example.com' }), /TRUSTED_PROXIES must list IP addresses/);
    assert.throws(() => loadConfig({ DB_SCAN_SHARE: '2' }), /DB_SCAN_SHARE must be between/);
  });
});

describe('per-caller limits', () => {
  test('a token bucket per caller, refilled by the clock; only rated requests take tokens', () => {
    let now = 0;
    const limits = new CallerLimits({ maxInFlight: 0, ratePerSecond: 2, burst: 2 }, () => now);
    limits.enter('a', true)();
    limits.enter('a', true)();
    assert.throws(
      () => limits.enter('a', true),
      (err: unknown) => err instanceof TooManyRequests && err.limit === 'caller-rate' && err.retryAfterSeconds === 1,
    );
    limits.enter('a', false)(); // not rated: a point lookup
    limits.enter('b', true)(); // another caller
    now = 500; // half a second: one token back
    limits.enter('a', true)();
    assert.throws(() => limits.enter('a', true), TooManyRequests);
  });

  test('requests in flight are bounded per caller and given back once', () => {
    const limits = new CallerLimits({ maxInFlight: 1, ratePerSecond: 0, burst: 1 });
    const end = limits.enter('a', false);
    assert.throws(
      () => limits.enter('a', false),
      (err: unknown) => err instanceof TooManyRequests && err.limit === 'caller-in-flight',
    );
    end();
    end(); // twice is once
    limits.enter('a', false);
    assert.throws(() => limits.enter('a', false), TooManyRequests);
  });
});

describe('fair turns', () => {
  test('a freed place goes to the waiting caller running the fewest requests', async () => {
    const queue = new FairQueue({ maxActive: 2, waitMs: 10_000 });
    const heavy1 = queue.enter('heavy') as () => void;
    const heavy2 = queue.enter('heavy') as () => void;
    const order: string[] = [];
    const turn = (caller: string) =>
      Promise.resolve(queue.enter(caller)).then((end) => {
        order.push(caller);
        return end;
      });
    const heavy3 = turn('heavy');
    const light = turn('light');
    heavy1();
    (await light)();
    heavy2();
    (await heavy3)();
    assert.deepEqual(order, ['light', 'heavy'], 'the light caller first, though it came later');
  });

  test('a request that waits too long is shed with 503', async () => {
    const queue = new FairQueue({ maxActive: 1, waitMs: 20 });
    const end = queue.enter('a') as () => void;
    await assert.rejects(Promise.resolve(queue.enter('b')), (err: unknown) => err instanceof Overloaded && err.limit === 'queue-wait');
    end();
    assert.deepEqual(queue.stats(), { active: 0, waiting: 0, shed: 1 });
  });
});

describe("the scanning reads' share (FairSlots, each of its two kinds)", () => {
  test('slots go to waiting callers in turn, and a wait past the budget is shed', async () => {
    const share = new FairSlots(1, 10_000, 'heavy scanning reads');
    const order: string[] = [];
    let release!: () => void;
    const holding = share.run('a', () => new Promise<void>((resolve) => (release = resolve)));
    const waits = [
      share.run('a', async () => void order.push('a2')),
      share.run('a', async () => void order.push('a3')),
      share.run('b', async () => void order.push('b1')),
    ];
    release();
    await holding;
    await Promise.all(waits);
    assert.deepEqual(order, ['a2', 'b1', 'a3'], 'b is not kept behind all of a');
    const short = new FairSlots(1, 20, 'heavy scanning reads');
    let told = false;
    const held = short.run('a', () => new Promise<void>((resolve) => setTimeout(resolve, 200)));
    await assert.rejects(
      short.run(
        'b',
        async () => undefined,
        () => (told = true),
      ),
      (err: unknown) => err instanceof Overloaded && err.limit === 'scan-share' && err.status === 503,
    );
    assert.ok(told, 'the waiter was told it waits');
    await held;
    assert.equal(short.stats().shed, 1);
  });
});

describe('a caller held to fewer slots than there are', () => {
  test('a capped caller waits with slots free, others take them, and its turn comes when its cap allows', async () => {
    const caps: Record<string, number> = { a: 1 };
    const slots = new FairSlots(3, 10_000, 'scans', (caller) => caps[caller] ?? Number.POSITIVE_INFINITY);
    const ends: Record<string, () => void> = {};
    const hold = (caller: string, name: string) => slots.run(caller, () => new Promise<void>((resolve) => (ends[name] = resolve)));
    const a1 = hold('a', 'a1');
    let a2Started = false;
    const a2 = slots.run('a', async () => {
      a2Started = true;
    });
    assert.equal(slots.stats().inUse, 1, 'a is at its cap: its second waits with two slots free');
    assert.equal(slots.stats().waiting, 1);
    const b1 = hold('b', 'b1');
    assert.equal(slots.stats().inUse, 2, 'b is not kept waiting behind a');
    ends.b1?.();
    await b1;
    assert.equal(a2Started, false, "b's slot does not lift a's cap");
    // A cap that rises from outside (a's slot of another kind came free) takes effect on grant().
    caps.a = 2;
    slots.grant();
    await a2;
    assert.ok(a2Started);
    ends.a1?.();
    await a1;
    assert.deepEqual(slots.stats(), { slots: 3, inUse: 0, waiting: 0, shed: 0 });
  });

  test("the light share is a lone caller's: while someone else is active, a caller's scans together hold as many connections as the heavy share", async () => {
    let clock = 0;
    const share = new ScanShare({ slots: 1, lightSlots: 4, waitMs: 10_000, costs: new StatementCosts({ heavyFrom: 1000 }), now: () => clock });
    const light = async () => 10;
    const ends: Array<() => void> = [];
    const run = (caller: string) => share.runStatement(caller, [{ text: 'SELECT 1' }], light, () => new Promise<void>((resolve) => ends.push(resolve)));
    share.seen('a');
    const alone = [run('a'), run('a')];
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(share.stats().lightInUse, 2, 'alone, a uses the light share');
    share.seen('b'); // b looks a trip up
    const third = run('a');
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(share.stats().lightInUse, 2, 'with b active, a third light statement of a waits');
    for (const end of ends.splice(0)) end();
    await Promise.all(alone);
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(share.stats().lightInUse, 1, "a holds one, the heavy share's size");
    // Light and heavy together: a's heavy statement waits for its light one, though the heavy slot is free.
    let heavyRan = false;
    const heavy = share.runStatement(
      'a',
      [{ text: 'SELECT 2' }],
      async () => 5000,
      async () => {
        heavyRan = true;
      },
    );
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(heavyRan, false);
    for (const end of ends.splice(0)) end();
    await Promise.all([third, heavy]);
    assert.ok(heavyRan, 'granted when its light statement ended');
    clock += ACTIVE_CALLER_MS;
    const later = [run('a'), run('a')];
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(share.stats().lightInUse, 2, 'b quiet for a second: a is alone again');
    for (const end of ends.splice(0)) end();
    await Promise.all(later);
    assert.deepEqual([share.stats().light, share.stats().heavy], [5, 1]);
  });
});

describe('forced refreshes in the results cache', () => {
  const answer = async () => ({ status: 200, body: Buffer.from('{}') });

  test('with a policy, concurrent refreshes share one load and those within the interval wait for the next; `true` (protection off) always loads', async () => {
    let now = 0;
    const cache = new ResultsCache({ maxEntries: 10, maxBytes: 1 << 20, now: () => now });
    let loads = 0;
    const load = async () => {
      loads++;
      await new Promise((resolve) => setImmediate(resolve));
      return answer();
    };
    const policy = { maxAgeMs: 0, minIntervalMs: 1000 };
    const outcomes = await Promise.all([cache.getOrLoad('k', 60, load, policy), cache.getOrLoad('k', 60, load, policy)]);
    assert.deepEqual(
      outcomes.map((o) => o.outcome),
      ['BYPASS', 'COALESCED'],
    );
    // Within the interval: the refreshes wait for the next load, due when it has passed (50 ms here), and share it.
    now = 950;
    const waiting = [cache.getOrLoad('k', 60, load, policy), cache.getOrLoad('k', 60, load, policy)];
    assert.equal(loads, 1, 'nothing loads before it is due');
    assert.deepEqual(
      (await Promise.all(waiting)).map((o) => o.outcome),
      ['COALESCED', 'COALESCED'],
    );
    assert.equal(loads, 2, 'one load for both');
    await Promise.all([cache.getOrLoad('k', 60, load, true), cache.getOrLoad('k', 60, load, true)]);
    assert.equal(loads, 4, 'the plain rule: each forced refresh loads');
  });
});
