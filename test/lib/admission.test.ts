import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { CallerLimits } from '../../lib/admission/callerLimits.ts';
import { clientAddress, trustedProxies } from '../../lib/admission/clientAddress.ts';
import { FairQueue } from '../../lib/admission/fairQueue.ts';
import { loadConfig } from '../../lib/ground/config.ts';
import { ResultsCache } from '../../lib/cache/resultsCache.ts';
import { CHEAP_HOLD_MS, CHEAP_PROOF_RUNS, ScanShare } from '../../lib/db/scanShare.ts';
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

describe("the scanning reads' share", () => {
  test('slots go to waiting callers in turn, and a wait past the budget is shed', async () => {
    const share = new ScanShare({ slots: 1, waitMs: 10_000 });
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
    const short = new ScanShare({ slots: 1, waitMs: 20 });
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

describe('cheap scanning reads run beside the share', () => {
  test('an operation proves cheap by its runs, runs beside the share up to its slots, and a slow run (even one still running) sends it back for the hold', async () => {
    let clock = 0;
    const share = new ScanShare({ slots: 1, waitMs: 10_000, cheapMs: 50, cheapSlots: 2, now: () => clock });
    // Something expensive holds the one slot throughout.
    let releaseCount!: () => void;
    const count = share.run('a', () => new Promise<void>((resolve) => (releaseCount = resolve)), undefined, 'getTripCount');
    const waited: string[] = [];
    const pending = (operation: string, work: () => Promise<void> = async () => undefined) => share.run('b', work, () => waited.push(operation), operation);
    // Every operation starts expensive: the first stream page waits for the slot.
    const first = pending('stream');
    assert.deepEqual(waited, ['stream']);
    releaseCount();
    await Promise.all([count, first]);
    // Fast runs through the share; a refusal (a bad filter) proves nothing.
    await assert.rejects(share.run('b', async () => Promise.reject(new Error('PGRST100')), undefined, 'stream'));
    for (let run = 1; run < CHEAP_PROOF_RUNS - 1; run++) await pending('stream');
    let holdAgain!: () => void;
    const held = share.run('a', () => new Promise<void>((resolve) => (holdAgain = resolve)), undefined, 'getTripCount');
    waited.length = 0;
    const last = pending('stream'); // the 20th fast run still waits: not proven yet
    assert.deepEqual(waited, ['stream']);
    holdAgain();
    await Promise.all([held, last]);

    // Proven: with the slot held, stream pages run beside it, two at once; a third waits.
    let holdSlot!: () => void;
    const slot = share.run('a', () => new Promise<void>((resolve) => (holdSlot = resolve)), undefined, 'getTripCount');
    waited.length = 0;
    const releases: Array<() => void> = [];
    const beside = [0, 1].map(() => pending('stream', () => new Promise<void>((resolve) => releases.push(resolve))));
    assert.equal(share.stats().cheapInUse, 2);
    assert.deepEqual(waited, []);
    const third = pending('stream');
    assert.deepEqual(waited, ['stream'], 'past its cheap slots it takes the share');
    // One of them is still running 60 ms later (past cheapMs): the next page takes the share at once.
    clock += 60;
    const fourth = pending('stream');
    assert.deepEqual(waited, ['stream', 'stream']);
    for (const release of releases) release();
    await Promise.all(beside);
    holdSlot();
    await Promise.all([slot, third, fourth]);
    // Slow lately: however many fast runs follow, not cheap again until the hold has passed.
    for (let run = 0; run < CHEAP_PROOF_RUNS; run++) await pending('stream');
    const slot2 = share.run('a', () => new Promise<void>((resolve) => (holdSlot = resolve)), undefined, 'getTripCount');
    waited.length = 0;
    const held2 = pending('stream');
    assert.deepEqual(waited, ['stream'], 'within the hold');
    holdSlot();
    await Promise.all([slot2, held2]);
    clock += CHEAP_HOLD_MS;
    const slot3 = share.run('a', () => new Promise<void>((resolve) => (holdSlot = resolve)), undefined, 'getTripCount');
    waited.length = 0;
    await pending('stream');
    assert.deepEqual(waited, [], 'cheap again after the hold');
    holdSlot();
    await slot3;
    assert.equal(share.stats().cheapInUse, 0);
  });

  test('cheapMs 0 (DB_SCAN_CHEAP_MS=0): every scanning read takes the share', async () => {
    const share = new ScanShare({ slots: 1, waitMs: 10_000, cheapMs: 0, cheapSlots: 5 });
    for (let run = 0; run < CHEAP_PROOF_RUNS + 1; run++) await share.run('b', async () => undefined, undefined, 'stream');
    let release!: () => void;
    const held = share.run('a', () => new Promise<void>((resolve) => (release = resolve)));
    let told = false;
    const next = share.run(
      'b',
      async () => undefined,
      () => (told = true),
      'stream',
    );
    assert.ok(told);
    release();
    await Promise.all([held, next]);
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
