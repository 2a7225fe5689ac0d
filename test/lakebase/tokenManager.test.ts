import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  DEFAULT_TOKEN_REFRESH,
  heartbeatSeconds,
  readTokenRefreshSettings,
  TokenManager,
  TokenUnavailableError,
  type Credential,
  type CredentialSource,
  type TokenRefreshSettings,
} from '../../lib/lakebase/tokenManager.ts';
import { ConfigError } from '../../lib/ground/settingsReaders.ts';
import { captureLogs } from '../support/logCapture.ts';
import { linesLeakingSecrets, waitFor } from '../support/workspaceEmulator.ts';

/**
 * The token manager's mechanics against a scripted credential source (the workspace side is
 * covered with the real SDK and the emulator in the other suites).
 */
class ScriptedSource implements CredentialSource {
  readonly description = 'scripted source';
  calls = 0;
  issued: string[] = [];
  failWith: Error | null = null;
  lifetimeMs: number;
  private gate: { promise: Promise<void>; open: () => void } | null = null;

  constructor(lifetimeMs = 60_000) {
    this.lifetimeMs = lifetimeMs;
  }

  hold(): void {
    let open!: () => void;
    const promise = new Promise<void>((resolve) => (open = resolve));
    this.gate = { promise, open };
  }

  release(): void {
    this.gate?.open();
    this.gate = null;
  }

  async generate(signal: AbortSignal): Promise<Credential> {
    this.calls += 1;
    if (this.gate) await this.gate.promise;
    if (signal.aborted) throw new Error('aborted');
    if (this.failWith) throw this.failWith;
    const token = `scripted-token-${this.calls}-${Math.random().toString(36).slice(2)}`;
    this.issued.push(token);
    return { token, expiresAt: new Date(Date.now() + this.lifetimeMs) };
  }
}

const fast = (overrides: Partial<TokenRefreshSettings> = {}): TokenRefreshSettings => ({
  ...DEFAULT_TOKEN_REFRESH,
  retryMinSeconds: 0.05,
  retryMaxSeconds: 0.2,
  requestTimeoutSeconds: 2,
  ...overrides,
});

describe('token refresh settings', () => {
  test('defaults: every 50 minutes, early at 10 minutes left, heartbeat every 30 s', () => {
    const settings = readTokenRefreshSettings({});
    assert.equal(settings.intervalSeconds, 3000);
    assert.equal(settings.marginSeconds, 600);
    assert.equal(settings.cron, null);
    assert.equal(heartbeatSeconds(settings), 30);
    assert.equal(heartbeatSeconds({ intervalSeconds: 2, marginSeconds: 1, cron: null }), 1);
    assert.equal(heartbeatSeconds({ intervalSeconds: 120, marginSeconds: 600, cron: null }), 12);
  });

  test('a bad value names its variable; "*/50" style mistakes are explained', () => {
    assert.throws(
      () => readTokenRefreshSettings({ TOKEN_REFRESH_CRON: 'every 50 minutes' }),
      (err: ConfigError) => {
        assert.ok(err instanceof ConfigError);
        assert.equal(err.variable, 'TOKEN_REFRESH_CRON');
        assert.match(err.message, /:00 and :50/);
        return true;
      },
    );
    assert.throws(() => readTokenRefreshSettings({ TOKEN_REFRESH_INTERVAL_SECONDS: 'soon' }), /TOKEN_REFRESH_INTERVAL_SECONDS/);
    assert.throws(() => readTokenRefreshSettings({ TOKEN_REFRESH_MARGIN_SECONDS: '-1' }), /TOKEN_REFRESH_MARGIN_SECONDS/);
    assert.throws(
      () => readTokenRefreshSettings({ TOKEN_REFRESH_RETRY_MIN_SECONDS: '5', TOKEN_REFRESH_RETRY_MAX_SECONDS: '1' }),
      /TOKEN_REFRESH_RETRY_MAX_SECONDS/,
    );
    assert.equal(readTokenRefreshSettings({ TOKEN_REFRESH_CRON: '0 */30 * * * *' }).cron, '0 */30 * * * *');
  });
});

describe('TokenManager', () => {
  test('concurrent refreshes share one request; requests keep the valid token meanwhile', async () => {
    const logs = captureLogs();
    const source = new ScriptedSource();
    const manager = new TokenManager(source, fast(), logs.logger, { schedule: false });
    await manager.start();
    const first = await manager.getPassword();
    assert.equal(source.calls, 1);

    source.hold();
    const refreshes = Array.from({ length: 10 }, () => manager.refresh('test', { refusedPasswordTakenAt: Date.now() + 1 }));
    assert.equal(manager.state().refreshing, true);
    // Never blocks while the held token is valid.
    assert.equal(await manager.getPassword(), first);
    source.release();
    await Promise.all(refreshes);
    assert.equal(source.calls, 2);
    assert.notEqual(await manager.getPassword(), first);
    assert.equal(manager.state().refreshCount, 2);
    await manager.stop();

    const messages = logs.records().map((r) => r.msg);
    assert.ok(messages.includes('Background token refresh: Generating fresh PostgreSQL OAuth token'));
    assert.ok(messages.includes('Background token refresh: Token updated successfully'));
    assert.deepEqual(linesLeakingSecrets(logs.lines, source.issued), []);
  });

  test('a login refused with an older token retries with the newer one instead of refreshing again', async () => {
    const source = new ScriptedSource();
    const manager = new TokenManager(source, fast(), captureLogs().logger, { schedule: false, loginRetryGraceMs: 0 });
    await manager.start();
    const before = Date.now() - 10;
    await manager.refresh('login refused', { refusedPasswordTakenAt: before });
    assert.equal(source.calls, 1, 'the token is newer than the failed attempt: no refresh');
    await manager.refresh('login refused', { refusedPasswordTakenAt: Date.now() + 1 });
    assert.equal(source.calls, 2, 'the failed attempt used the current token: refresh');
    await manager.stop();
  });

  test('failures back off with jitter, show as degraded while the token is valid, and recover', async () => {
    const logs = captureLogs();
    const source = new ScriptedSource();
    const manager = new TokenManager(source, fast({ intervalSeconds: 1, marginSeconds: 0 }), logs.logger);
    await manager.start();
    const held = await manager.getPassword();
    source.failWith = new Error('HTTP 503 TEMPORARILY_UNAVAILABLE: emulated outage');

    const degraded = await waitFor('three failed refreshes', () => (manager.state().consecutiveFailures >= 3 ? manager.state() : null), 8000);
    assert.equal(degraded.status, 'degraded');
    assert.equal(degraded.valid, true);
    assert.match(degraded.lastError ?? '', /emulated outage/);
    assert.ok(degraded.nextRefreshAt, 'a retry is scheduled');
    // Requests are not held up: the old token is still handed out.
    assert.equal(await manager.getPassword(), held);

    source.failWith = null;
    const recovered = await waitFor('recovery', () => (manager.state().status === 'ok' && manager.state().refreshCount >= 2 ? manager.state() : null), 5000);
    assert.equal(recovered.lastError, null);
    assert.equal(recovered.consecutiveFailures, 0);
    assert.ok(recovered.refreshFailures >= 3);
    await manager.stop();

    const failures = logs.records().filter((r) => String(r.msg).startsWith('Background token refresh failed'));
    assert.ok(failures.length >= 3);
    assert.ok(failures.every((r) => r.level === 40 && /emulated outage/.test(String(r.msg))));
    assert.deepEqual(linesLeakingSecrets(logs.lines, source.issued), []);
  });

  test('backoff doubles from the minimum up to the maximum, between half and all of each step', async () => {
    for (const random of [0, 0.999]) {
      const source = new ScriptedSource();
      const settings = fast({ retryMinSeconds: 1, retryMaxSeconds: 4 });
      const manager = new TokenManager(source, settings, captureLogs().logger, { schedule: false, random: () => random });
      await manager.start();
      source.failWith = new Error('down');
      const delays: number[] = [];
      for (let attempt = 1; attempt <= 4; attempt++) {
        // Past the previous retry time, so the request path may try again.
        (manager as unknown as { nextRetryAt: number | null }).nextRetryAt = null;
        await manager.refresh('test', { refusedPasswordTakenAt: Date.now() + 1 }).catch(() => undefined);
        const state = manager.state();
        delays.push(((manager as unknown as { nextRetryAt: number }).nextRetryAt - state.lastFailureAt!.getTime()) / 1000);
      }
      const expected = random === 0 ? [0.5, 1, 2, 2] : [1, 2, 4, 4];
      for (const [i, d] of delays.entries()) assert.ok(Math.abs(d - expected[i]!) < 0.02, `attempt ${i + 1}: ${d}s, expected ~${expected[i]}s`);
      await manager.stop();
    }
  });

  test('with no valid token and the workspace failing, getPassword fails fast instead of hanging', async () => {
    const source = new ScriptedSource(1200);
    const manager = new TokenManager(source, fast({ retryMinSeconds: 5, retryMaxSeconds: 5, marginSeconds: 0 }), captureLogs().logger, { schedule: false });
    await manager.start();
    source.failWith = new Error('workspace down');
    await waitFor('the token to expire', () => manager.state().valid === false, 3000);
    await assert.rejects(manager.getPassword(), /workspace down/); // one attempt...
    const started = Date.now();
    await assert.rejects(manager.getPassword(), (err: Error) => err instanceof TokenUnavailableError && /next retry in/.test(err.message)); // ...then backoff
    assert.ok(Date.now() - started < 100);
    assert.equal(manager.state().status, 'expired');
    await manager.stop();
  });

  test('the heartbeat refreshes on the interval, and early near expiry', async () => {
    const byInterval = new ScriptedSource(60_000);
    const m1 = new TokenManager(byInterval, fast({ intervalSeconds: 1, marginSeconds: 0 }), captureLogs().logger);
    const byMargin = new ScriptedSource(2500);
    const m2 = new TokenManager(byMargin, fast({ intervalSeconds: 3600, marginSeconds: 1.5 }), captureLogs().logger);
    await Promise.all([m1.start(), m2.start()]);
    await waitFor('interval refreshes', () => byInterval.calls >= 3, 8000);
    await waitFor('early refreshes', () => byMargin.calls >= 3, 8000);
    // Refreshed before expiry every time: the held token never lapsed.
    assert.equal(m2.state().valid, true);
    assert.match(m1.state().schedule, /every 1s .*heartbeat "\*\/1 \* \* \* \* \*"/);
    await Promise.all([m1.stop(), m2.stop()]);
  });

  test('TOKEN_REFRESH_CRON drives refreshes at its firings', async () => {
    const source = new ScriptedSource(60_000);
    const settings = { ...fast(), ...readTokenRefreshSettings({ TOKEN_REFRESH_CRON: '* * * * * *', TOKEN_REFRESH_MARGIN_SECONDS: '0' }) };
    const manager = new TokenManager(source, settings, captureLogs().logger);
    await manager.start();
    await waitFor('cron refreshes', () => source.calls >= 3, 6000);
    assert.ok(manager.state().nextRefreshAt);
    await manager.stop();
    const calls = source.calls;
    await assert.rejects(manager.getPassword(), TokenUnavailableError);
    assert.equal(manager.state().status, 'stopped');
    assert.equal(source.calls, calls);
  });

  test('start() gives up after its attempts and reports the cause', async () => {
    const source = new ScriptedSource();
    source.failWith = new Error('HTTP 403 PERMISSION_DENIED: no access');
    const manager = new TokenManager(source, fast(), captureLogs().logger, { startupAttempts: 2 });
    await assert.rejects(manager.start(), /PERMISSION_DENIED/);
    assert.equal(source.calls, 2);
    assert.equal(manager.state().status, 'expired');
    await manager.stop();
  });
});
