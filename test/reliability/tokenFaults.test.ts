import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { PasswordSource } from '../../lib/db/connectionTarget.ts';
import type { LakebaseTokenState } from '../../lib/lakebase/tokenManager.ts';
import { reportFigures } from '../support/figures.ts';
import { listenOnLoopback, type RunningHttpServer } from '../support/httpHarness.ts';
import { startLakebaseService, type LakebaseService } from '../support/lakebaseService.ts';
import { runLoad, type LoadOutcome } from '../support/loadClient.ts';
import { captureLogs } from '../support/logCapture.ts';
import { watchProcessFaults } from '../support/processFaults.ts';
import { credentialsToSend, SecretScanner } from '../support/secretScan.ts';
import { startEmulatedLakebase, TEST_SERVICE_PRINCIPAL, waitFor, type EmulatedLakebase } from '../support/workspaceEmulator.ts';

/**
 * Token faults, end to end: the service in Lakebase mode (the app's service principal, OAuth M2M)
 * behind the real HTTP server, the real SDK talking to the workspace emulator, the emulator
 * minting real expiring Postgres passwords. Connections are recycled every second, so new logins
 * (which need a valid token) happen all the time. During each fault every answer must be a 200, or
 * a 503 problem with Retry-After within the pool timeout; nothing may hang or crash; and once the
 * cause clears, the service recovers by itself with nothing failing afterwards.
 */
const TOKEN_LIFETIME_S = 5;
const POOL_TIMEOUT_S = 2;
const ROWS = 200;
const sent = credentialsToSend();

let lb: EmulatedLakebase;
let service: LakebaseService;
let http: RunningHttpServer;
const logs = captureLogs();

before(async () => {
  lb = await startEmulatedLakebase({ rows: ROWS, tokenLifetimeSeconds: TOKEN_LIFETIME_S });
  service = await startLakebaseService(lb, {
    logs,
    env: {
      DB_POOL_SIZE: '1',
      DB_MAX_OVERFLOW: '3',
      DB_POOL_TIMEOUT: String(POOL_TIMEOUT_S),
      DB_POOL_IDLE_TIMEOUT: '1',
      DB_POOL_MAX_LIFETIME: '1',
      READINESS_TIMEOUT: '1',
      TOKEN_REFRESH_INTERVAL_SECONDS: '3',
      TOKEN_REFRESH_MARGIN_SECONDS: '2',
      TOKEN_REFRESH_RETRY_MIN_SECONDS: '0.2',
      TOKEN_REFRESH_RETRY_MAX_SECONDS: '0.5',
      WORKSPACE_REQUEST_TIMEOUT_SECONDS: '1',
    },
  });
  http = await listenOnLoopback(service);
});

after(async () => {
  await http?.close();
  await service?.close();
  await lb?.stop();
});

const tokenState = () => (service.ctx.target.password as PasswordSource).state() as LakebaseTokenState;
const credentialRequests = () => lb.emulator.requests.filter((r) => r.path.endsWith('/credentials')).length;

interface Scenario {
  name: string;
  /** Starts the fault. */
  inject(): Promise<void>;
  /** Resolves once the fault has taken effect (e.g. the token really expired). */
  inEffect(): Promise<void>;
  /** How long to keep the fault after it took effect. */
  holdMs: number;
  clear(): Promise<void>;
  /** Extra checks while the fault holds (readiness, state). */
  during?(): Promise<void>;
}

/**
 * Runs the load through one fault and returns its figures; asserts the invariants every token
 * fault shares.
 */
async function throughFault(scenario: Scenario) {
  const crashes = watchProcessFaults();
  const scanner = new SecretScanner({
    ...sent.secrets,
    'client secret': TEST_SERVICE_PRINCIPAL.clientSecret,
    ...Object.fromEntries(
      lb.emulator
        .secrets()
        .filter((s) => s.length >= 8)
        .map((s, i) => [`emulator secret ${i}`, s]),
    ),
  });
  const outcomes: LoadOutcome[] = [];
  let phase: 'before' | 'fault' | 'after' = 'before';
  let injectedAt = 0;
  let clearedAt = 0;
  let firstFailureAt = 0;
  let firstSuccessAfterClear = 0;
  let stopAt = Infinity;
  const phases: Record<string, Record<string, number>> = { before: {}, fault: {}, after: {} };

  const load = runLoad({
    baseUrl: http.baseUrl,
    workers: 4,
    timeoutMs: (POOL_TIMEOUT_S + 3) * 1000,
    stop: () => Date.now() > stopAt,
    // Uncached reads only: each needs the database, so each can meet the fault.
    next: (worker, seq) =>
      seq % 2 === 0
        ? { method: 'GET', path: '/trips/sample', headers: sent.headers }
        : { method: 'GET', path: `/trips/${((worker * 31 + seq) % ROWS) + 1}`, headers: { ...sent.headers, 'cache-control': 'no-cache' } },
    onOutcome(outcome) {
      outcomes.push(outcome);
      const key = outcome.error ?? String(outcome.status);
      phases[phase]![key] = (phases[phase]![key] ?? 0) + 1;
      const at = outcome.startedAt + outcome.ms;
      if (phase === 'fault' && outcome.status !== 200 && !firstFailureAt) firstFailureAt = performance.now();
      if (phase === 'after' && outcome.status === 200 && !firstSuccessAfterClear) firstSuccessAfterClear = at;
      scanner.scanResponse(`${outcome.request.method} ${outcome.request.path}`, outcome.headers, outcome.text);
    },
  });

  const credentialsAtStart = credentialRequests();
  let credentialsDuringFault = 0;
  try {
    await waitFor('40 successes before the fault', () => outcomes.filter((o) => o.status === 200).length >= 40, 15_000);
    injectedAt = performance.now();
    const credentialsBefore = credentialRequests();
    phase = 'fault';
    await scenario.inject();
    await scenario.inEffect();
    await waitFor('requests meeting the fault', () => firstFailureAt > 0, 15_000);
    await scenario.during?.();
    await new Promise((resolve) => setTimeout(resolve, scenario.holdMs));
    credentialsDuringFault = credentialRequests() - credentialsBefore;
    await scenario.clear();
    clearedAt = performance.now();
    phase = 'after';
    await waitFor('the first success after the fault cleared', () => firstSuccessAfterClear > 0, 15_000);
    // Keep the load going for 2 s past recovery: nothing may fail any more.
    const recoveredAt = performance.now();
    stopAt = Date.now() + 2000;
    const stats = await load;
    const afterRecovery = outcomes.filter((o) => o.startedAt > recoveredAt);

    // Every answer: a 200, or a 503 problem with Retry-After, within the pool timeout (+ slack).
    const unexpected = outcomes.filter((o) => o.status !== 200 && o.status !== 503);
    assert.deepEqual(
      unexpected.slice(0, 3).map((o) => `${o.status} ${o.error ?? ''} ${o.text.slice(0, 200)}`),
      [],
    );
    for (const o of outcomes.filter((x) => x.status === 503)) {
      assert.match(o.headers?.get('content-type') ?? '', /application\/problem\+json/);
      assert.ok(Number(o.headers?.get('retry-after')) > 0, 'a 503 says when to retry');
    }
    const slowest = Math.max(...outcomes.map((o) => o.ms));
    assert.ok(slowest < (POOL_TIMEOUT_S + 1.5) * 1000, `slowest answer ${Math.round(slowest)} ms`);
    assert.ok((phases.fault!['503'] ?? 0) > 0, 'the fault must have been felt (else this proves nothing)');
    assert.deepEqual(
      afterRecovery.filter((o) => o.status !== 200).map((o) => o.status),
      [],
      'nothing fails after recovery',
    );
    assert.ok(afterRecovery.length > 20, 'load kept flowing after recovery');
    assert.deepEqual(crashes.faults, [], 'the process never crashed');
    for (const line of logs.lines) scanner.scan('log line', line);
    assert.deepEqual(scanner.hits, [], 'no credential in any response or log line');

    const figures = {
      requests: stats.sent,
      ok: Object.values(phases).reduce((n, p) => n + (p['200'] ?? 0), 0),
      failedDuringFault: phases.fault!['503'] ?? 0,
      okDuringFault: phases.fault!['200'] ?? 0,
      other: unexpected.length,
      firstFailureAfterInjectMs: Math.round(firstFailureAt - injectedAt),
      faultHeldMs: Math.round(clearedAt - injectedAt),
      recoveryMs: Math.round(firstSuccessAfterClear - clearedAt),
      failuresAfterRecovery: afterRecovery.filter((o) => o.status !== 200).length,
      slowestMs: Math.round(slowest),
      credentialRequestsDuringFault: credentialsDuringFault,
      credentialRequestsTotal: credentialRequests() - credentialsAtStart,
      secretHits: scanner.hits.length,
    };
    reportFigures(`token fault: ${scenario.name}`, figures);
    return figures;
  } finally {
    stopAt = 0;
    await load.catch(() => undefined);
    crashes.stop();
    lb.emulator.setFault(null);
    await lb.emulator.up();
  }
}

async function readiness(): Promise<{ status: number; body: { failing: string[]; checks: { token?: { valid: boolean; last_error: string | null } } } }> {
  const response = await fetch(`${http.baseUrl}/health/ready`);
  return { status: response.status, body: (await response.json()) as never };
}

/** Resolves once the held token has expired (the fault has taken effect). */
async function tokenLapsed(): Promise<void> {
  await waitFor('the token to expire', () => !tokenState().valid, (TOKEN_LIFETIME_S + 5) * 1000);
}

/** Readiness answers 503 naming the token, with the workspace's error. */
async function assertNotReadyOnToken(lastError: RegExp): Promise<void> {
  const ready = await readiness();
  assert.equal(ready.status, 503);
  assert.ok(ready.body.failing.includes('token'), JSON.stringify(ready.body.failing));
  assert.match(ready.body.checks.token?.last_error ?? '', lastError);
}

describe('token faults under load', () => {
  test('token expiry with a missed refresh: 503 + Retry-After once it lapses; full recovery at the next refresh', async () => {
    const figures = await throughFault({
      name: 'expiry with a missed refresh',
      // The workspace refuses every credential request: the scheduled refresh (and its retries) fail.
      inject: async () => lb.emulator.setFault({ kind: 'status', status: 503, errorCode: 'TEMPORARILY_UNAVAILABLE' }, { match: 'credentials' }),
      inEffect: tokenLapsed,
      holdMs: 1500,
      during: async () => {
        await assertNotReadyOnToken(/503|TEMPORARILY_UNAVAILABLE/);
      },
      clear: async () => lb.emulator.setFault(null),
    });
    assert.ok(figures.recoveryMs < 5000, `recovered ${figures.recoveryMs} ms after the workspace answered again`);
    // Retries back off: the request path never hammers the failing workspace.
    assert.ok(
      figures.credentialRequestsDuringFault < figures.faultHeldMs / 150,
      `${figures.credentialRequestsDuringFault} credential requests in ${figures.faultHeldMs} ms`,
    );
    assert.equal((await readiness()).status, 200);
  });

  test('revoked token, workspace healthy: the refused logins force one refresh and nothing fails', async () => {
    const minted = lb.emulator.credentialsFor(TEST_SERVICE_PRINCIPAL.clientId);
    const refreshes = tokenState().refreshCount;
    let credentialsBeforeRevoke = 0;
    const outcomes: number[] = [];
    let stop = false;
    const load = runLoad({
      baseUrl: http.baseUrl,
      workers: 4,
      timeoutMs: 10_000,
      stop: () => stop,
      next: () => ({ method: 'GET', path: '/trips/sample' }),
      onOutcome: (o) => outcomes.push(o.status),
    });
    try {
      await waitFor('load', () => outcomes.length >= 20);
      // Just after a scheduled refresh, so the next one is seconds away: any new token now is the forced one.
      await waitFor('a fresh token', () => (tokenState().ageSeconds ?? 99) < 1, 10_000);
      const before = tokenState().refreshCount;
      credentialsBeforeRevoke = credentialRequests();
      await lb.emulator.revoke(TEST_SERVICE_PRINCIPAL.clientId);
      const revokedAt = outcomes.length;
      await waitFor('a forced refresh', () => tokenState().refreshCount > before, 5000);
      await waitFor('load after the refresh', () => outcomes.length > revokedAt + 40);
    } finally {
      stop = true;
      await load;
    }
    assert.deepEqual(
      outcomes.filter((s) => s !== 200),
      [],
    );
    // Many logins were refused at once; they shared one forced refresh (the scheduled one, every
    // 3 s, may add a second in the same window), not one credential request each.
    const credentialRequestsAfterRevoke = credentialRequests() - credentialsBeforeRevoke;
    assert.ok(
      credentialRequestsAfterRevoke >= 1 && credentialRequestsAfterRevoke <= 2,
      `${credentialRequestsAfterRevoke} credential requests after the revocation`,
    );
    reportFigures('token fault: revoked, workspace healthy', {
      requests: outcomes.length,
      failures: outcomes.filter((s) => s !== 200).length,
      credentialRequestsAfterRevoke,
      credentialsMinted: lb.emulator.credentialsFor(TEST_SERVICE_PRINCIPAL.clientId) - minted,
      refreshes: tokenState().refreshCount - refreshes,
    });
  });

  test('revoked token while the workspace keeps refusing: 503 + Retry-After; recovery once a valid token is issued', async () => {
    const figures = await throughFault({
      name: 'revoked, workspace refusing',
      inject: async () => {
        lb.emulator.setFault(
          { kind: 'status', status: 403, errorCode: 'PERMISSION_DENIED', message: 'Credential generation is disabled' },
          { match: 'credentials' },
        );
        await lb.emulator.revoke(TEST_SERVICE_PRINCIPAL.clientId);
      },
      // Logins are refused from now on; open connections live at most a second (DB_POOL_MAX_LIFETIME).
      inEffect: async () => undefined,
      holdMs: 2000,
      clear: async () => lb.emulator.setFault(null),
    });
    assert.ok(figures.recoveryMs < 5000, `recovered ${figures.recoveryMs} ms after the workspace issued tokens again`);
    assert.ok(
      figures.credentialRequestsDuringFault < figures.faultHeldMs / 150,
      `${figures.credentialRequestsDuringFault} credential requests in ${figures.faultHeldMs} ms`,
    );
  });

  test("workspace down for longer than the token's life: 503 once the token lapses; recovery when the workspace is back", async () => {
    let servedOnValidToken = 0;
    const figures = await throughFault({
      name: 'workspace down past the token lifetime',
      inject: async () => {
        await lb.emulator.down();
      },
      inEffect: tokenLapsed,
      holdMs: 1500,
      during: async () => {
        await assertNotReadyOnToken(/ECONNREFUSED|fetch failed|socket|did not answer/i);
        servedOnValidToken = tokenState().refreshFailures;
      },
      clear: async () => {
        await lb.emulator.up();
      },
    });
    // While the token was still valid the service kept answering: the fault was felt only after expiry.
    assert.ok(figures.okDuringFault > 0, 'requests were served while the old token was still valid');
    assert.ok(servedOnValidToken > 0, 'refreshes failed meanwhile');
    assert.ok(figures.recoveryMs < 5000, `recovered ${figures.recoveryMs} ms after the workspace came back`);
  });
});
