import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { after, test } from 'node:test';
import { KeyBatcher } from '../../lib/db/keyBatcher.ts';
import { ApiError, Unavailable } from '../../lib/errors.ts';

// The batcher's wait timers are unref'd (a real statement's socket keeps the process alive); the
// statements here are bare promises, so a timer keeps the event loop running while a test waits.
const keepAlive = setInterval(() => {}, 1000);
after(() => clearInterval(keepAlive));

/**
 * The batcher's queue stands in for the pool's wait, so it has the pool's bound: while the database
 * hangs, a lookup queued behind a stuck statement gets the pool's 503 after DB_POOL_TIMEOUT instead of
 * waiting for the stuck statement and then for its own (twice the bound; seen in the database-hang
 * fault test). The statement here is a promise the test holds, standing for a server that does not answer.
 */
test('a lookup queued behind a statement that does not finish gets a 503 after maxWaitMs; the one in flight is untouched', async () => {
  let release: (rows: Array<readonly [number, string]>) => void = () => {};
  const statements: number[][] = [];
  const batcher = new KeyBatcher<number, string>({
    maxBatch: 8,
    maxInFlight: 1,
    maxWaitMs: 200,
    load(keys) {
      statements.push([...keys]);
      return new Promise((resolve) => {
        release = resolve;
      });
    },
  });
  const first = batcher.get(1);
  const startedAt = performance.now();
  const queued = batcher.get(2);
  await assert.rejects(queued, (err: unknown) => err instanceof Unavailable && err.status === 503 && (err.retryAfterSeconds ?? 0) > 0);
  const waited = performance.now() - startedAt;
  assert.ok(waited >= 190 && waited < 1500, `rejected after ${waited.toFixed(0)} ms`);
  assert.deepEqual(statements, [[1]], 'the expired lookup never reached the database');

  release([[1, 'one']]);
  assert.equal(await first, 'one');
  // The slot is free again: a new lookup goes out and is answered.
  const next = batcher.get(3);
  release([[3, 'three']]);
  assert.equal(await next, 'three');
  assert.deepEqual(statements, [[1], [3]]);
});

test('a queued lookup is answered within maxWaitMs in all: its statement went out in time but hangs, so a 504; a neighbour answered in time keeps its row', async () => {
  const releases: Array<(rows: Array<readonly [number, string]>) => void> = [];
  const batcher = new KeyBatcher<number, string>({
    maxBatch: 8,
    maxInFlight: 1,
    maxWaitMs: 300,
    // Keys 1 and 2 wait for the test to answer; later keys are answered at once, in time.
    load: (keys) => ((keys[0] ?? 0) >= 3 ? Promise.resolve(keys.map((k) => [k, `row ${k}`] as const)) : new Promise((resolve) => releases.push(resolve))),
  });
  const first = batcher.get(1);
  const startedAt = performance.now();
  const queued = batcher.get(2);
  releases[0]?.([[1, 'one']]);
  assert.equal(await first, 'one');
  // The queued lookup went out when the slot freed; its statement now hangs past the bound.
  await assert.rejects(queued, (err: unknown) => err instanceof ApiError && err.status === 504);
  const waited = performance.now() - startedAt;
  assert.ok(waited >= 290 && waited < 1500, `answered after ${waited.toFixed(0)} ms`);
  releases[1]?.([[2, 'two']]);

  // Answered in time: the timer is gone with the answer and never fires on it.
  const third = batcher.get(3);
  const fourth = batcher.get(4);
  assert.equal(await third, 'row 3');
  assert.equal(await fourth, 'row 4');
  // Past their bound: a timer left armed must not touch an answered lookup.
  await new Promise((resolve) => setTimeout(resolve, 400));
});
